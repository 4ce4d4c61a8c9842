//! The daemon's end of a child's control socket (fd 3 in the child), read and written directly;
//! and the fd-passing `recvmsg`/`sendmsg` the fork server's socket uses too.
//!
//! Why not `tokio::net::UnixStream`: tokio treats a short read as "the socket is drained" and
//! clears its readiness. A child that attaches fds (`SCM_RIGHTS`) to its control messages makes
//! every read stop short at that message, so the readiness edge was lost with bytes still queued
//! and the run stalled until its timeout. Here readiness is cleared only on `EAGAIN`, and every
//! read is a `recvmsg` that receives attached fds with `MSG_CMSG_CLOEXEC` and closes them at once:
//! nothing a child sends can stall the reader or leave an fd open in the daemon.
//!
//! Writes go through the same registration (`send` with `MSG_NOSIGNAL`, so a child that closed
//! its end never raises SIGPIPE in the daemon).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Room for the control data of one `recvmsg`: more `SCM_RIGHTS` fds than fit are closed by the
/// kernel (`MSG_CTRUNC`), so the size only needs to be reasonable.
const CONTROL_BUF: usize = 4096;

/// The reading half of a control socket.
pub struct ControlReader(Arc<AsyncFd<OwnedFd>>);

/// The writing half of a control socket.
pub struct ControlWriter(Arc<AsyncFd<OwnedFd>>);

/// Registers a connected, non-blocking stream socket and splits it into its two halves.
pub fn split(socket: OwnedFd) -> io::Result<(ControlReader, ControlWriter)> {
    // SAFETY: the OwnedFd is a valid socket that the AsyncFd owns; nothing else closes it or
    // replaces the descriptor while it is registered.
    let fd = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
    let fd = Arc::new(fd);
    Ok((ControlReader(fd.clone()), ControlWriter(fd)))
}

/// One `recvmsg` into `buf`; fds that came with the bytes are closed. `Ok(0)`: end of stream.
fn recv_dropping_fds(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    recv_with_fds(fd, buf).map(|(n, _closed_on_drop, _)| n)
}

/// One `recvmsg` into `buf` (non-blocking): the byte count, every fd that came with the bytes
/// (owned, close-on-exec, so none can leak), and whether the data or the control part was
/// truncated (on a `SOCK_SEQPACKET` socket: the record did not fit).
pub fn recv_with_fds(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>, bool)> {
    // u64 elements keep the control buffer aligned for `cmsghdr`.
    let mut control = [0u64; CONTROL_BUF / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is a valid empty header; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_BUF as _;
    // SAFETY: msg describes valid, writable buffers of the stated lengths.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let fds = passed_fds(&msg);
    let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
    Ok((n as usize, fds, truncated))
}

/// Every fd an `SCM_RIGHTS` message in `msg` carried, now owned by the caller.
fn passed_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
    // msg_controllen; each SCM_RIGHTS payload is an array of ints (the received fds), new in
    // this process and owned by nobody else.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..len / std::mem::size_of::<libc::c_int>() {
                    let fd = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    fds
}

/// Up to this many fds travel with one message.
const MAX_SENT_FDS: usize = 8;

/// One non-blocking `sendmsg` of `bytes` with `fds` attached (`SCM_RIGHTS`), without SIGPIPE.
pub fn send_with_fds(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    if fds.len() > MAX_SENT_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many fds"));
    }
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut control = [0u64; 8]; // CMSG_SPACE(8 * 4) = 48 bytes
                                 // SAFETY: a zeroed msghdr is a valid empty header; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let len = std::mem::size_of_val(fds);
        // SAFETY: CMSG_* compute sizes and positions inside `control`, which has room for
        // MAX_SENT_FDS descriptors; the fds are copied into it.
        unsafe {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(len as u32) as _;
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(len as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(header), len);
        }
    }
    // SAFETY: `msg` points at `iov` and `control`, alive for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

impl AsyncRead for ControlReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            // `try_io` clears readiness only when the closure reports WouldBlock.
            match guard.try_io(|fd| recv_dropping_fds(fd.as_raw_fd(), unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ControlWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            let sent = guard.try_io(|fd| {
                // SAFETY: data is a valid readable buffer of data.len() bytes.
                let n = unsafe {
                    libc::send(
                        fd.as_raw_fd(),
                        data.as_ptr().cast(),
                        data.len(),
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match sent {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use tokio::io::AsyncReadExt;

    /// Sends `data` with `fd` attached as SCM_RIGHTS.
    fn send_with_fd(sock: &UnixStream, data: &[u8], fd: RawFd) {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: data.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: test-only sendmsg with buffers that outlive the call.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
            assert_eq!(
                libc::sendmsg(sock.as_raw_fd(), &msg, 0),
                data.len() as isize
            );
        }
    }

    /// Bytes that follow a message carrying fds are still read (no lost readiness), and the
    /// passed fds are closed, not kept.
    #[tokio::test]
    async fn passed_fds_are_closed_and_later_bytes_still_arrive() {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        let (mut reader, _writer) = split(ours.into()).expect("register");
        // The write end of a pipe travels; once every copy is closed its read end sees EOF.
        let mut ends = [0; 2];
        // SAFETY: pipe2 fills two fds.
        assert_eq!(
            unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_NONBLOCK) },
            0
        );
        for _ in 0..50 {
            send_with_fd(&theirs, b"x", ends[1]);
        }
        std::io::Write::write_all(&mut &theirs, b"rest\n").expect("write");
        drop(theirs);
        // SAFETY: our own copy of the write end.
        unsafe { libc::close(ends[1]) };
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, [&b"x".repeat(50)[..], b"rest\n"].concat());
        let mut byte = [0u8; 1];
        // SAFETY: reading one byte into a valid buffer.
        let n = unsafe { libc::read(ends[0], byte.as_mut_ptr().cast(), 1) };
        assert_eq!(
            n, 0,
            "every passed copy of the write end must be closed (EOF)"
        );
        // SAFETY: our read end.
        unsafe { libc::close(ends[0]) };
    }
}
