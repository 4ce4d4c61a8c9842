import os
_SHIM_FD = 4
exec(compile(os.pread(_SHIM_FD, os.fstat(_SHIM_FD).st_size, 0), "<string>", "exec"))
