//! The listening socket and the accept loop.
//!
//! Binding is careful because a socket path outlives crashes: a live daemon on the path is never
//! displaced (start-up fails with a clear message), a stale socket file left by a dead one is
//! replaced, and any other kind of file is left alone. Because the default path can be under
//! `/tmp`, the socket's directory is checked first (`secure_dir`): a symlink, or a directory
//! another user owns or can write, is refused before anything is created in it.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use crate::daemon::{ConnectionSlot, Daemon};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another ptcd is already listening on {0}; stop it or choose another --socket")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("socket directory {0}")]
    Directory(#[from] crate::secure_dir::SecureDirError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the socket at `path` with permissions `mode`, replacing a stale socket file.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, BindError> {
    let io = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    // The directory is created 0700 if missing, and must not be a symlink nor controlled by
    // another user (see `secure_dir`): otherwise nothing is created, chmod-ed or removed in it.
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let _dir = crate::secure_dir::ensure_dir(parent)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(BindError::InUse(path.to_path_buf())),
                Err(e)
                    if e.kind() == ErrorKind::ConnectionRefused
                        || e.kind() == ErrorKind::NotFound =>
                {
                    tracing::info!(path = %path.display(), "replacing stale socket");
                    std::fs::remove_file(path).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
        }
        Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    Ok(listener)
}

/// Takes over the listening socket passed by systemd socket activation (`LISTEN_FDS`), if any.
pub fn activated_listener() -> std::io::Result<Option<UnixListener>> {
    use std::os::fd::FromRawFd;
    let Some(fd) = sd_notify::listen_fds()?.next() else {
        return Ok(None);
    };
    // SAFETY: systemd passed this fd to us for our exclusive use; nothing else owns it.
    let listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener).map(Some)
}

/// Gives the socket file to `gid` (the `socket_group` setting).
pub fn set_group(path: &Path, gid: u32) -> Result<(), BindError> {
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| BindError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Accepts connections until the daemon starts draining.
pub async fn accept_loop(daemon: Arc<Daemon>, listener: UnixListener) {
    loop {
        tokio::select! {
            _ = daemon.draining.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let slot = match admit(&daemon, &stream) {
                        Ok(slot) => slot,
                        Err(reason) => {
                            tracing::warn!(%reason, "connection refused");
                            tokio::spawn(refuse(stream, reason));
                            continue;
                        }
                    };
                    let id = daemon.new_connection_id();
                    let d = daemon.clone();
                    daemon.connections.spawn(crate::connection::serve(d, stream, id, slot));
                }
                Err(e) => {
                    // EMFILE and friends: log, back off briefly, keep serving existing clients.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Checks the peer's credentials, then takes a connection slot (counted here, at accept).
fn admit(daemon: &Arc<Daemon>, stream: &UnixStream) -> Result<ConnectionSlot, String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("connection refused: cannot read peer credentials: {e}"))?;
    daemon.access().check(cred.uid(), cred.gid())?;
    daemon.admit_connection().ok_or_else(|| {
        format!(
            "connection refused: {} connections are open, the configured maximum (max_connections)",
            daemon.max_connections
        )
    })
}

/// Tells a refused client why, in one JSON-RPC error line, and closes.
async fn refuse(mut stream: UnixStream, reason: String) {
    use tokio::io::AsyncWriteExt;
    let error = crate::rpc::RpcError::new(crate::rpc::error::INVALID_REQUEST, reason);
    let line = crate::rpc::message::error_line(&crate::rpc::Id::Null, &error);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = stream.write_all(&line).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
