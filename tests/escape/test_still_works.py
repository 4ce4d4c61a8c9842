"""What must keep working under the default policy."""


def ok(sb, code, **params):
    r = sb.run(code, **params)
    assert r["status"] == "ok", r
    return r


def test_threads_work(sb):
    code = """
    import threading
    out = []
    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(16)]
    for t in ts: t.start()
    for t in ts: t.join()
    sorted(out) == list(range(16))
    """
    assert ok(sb, code)["value"] is True


def test_thread_pool_executor_works(sb):
    code = """
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as ex:
        total = sum(ex.map(lambda x: x * x, range(100)))
    total
    """
    assert ok(sb, code)["value"] == 328350


def test_asyncio_gather_and_to_thread_work(sb):
    code = """
    import asyncio
    async def sq(x):
        await asyncio.sleep(0.001)
        return x * x
    r = await asyncio.gather(*(sq(i) for i in range(50)))
    t = await asyncio.to_thread(sum, r)
    t
    """
    assert ok(sb, code)["value"] == 40425


def test_asyncio_run_works(sb):
    code = """
    import asyncio
    async def main():
        await asyncio.sleep(0)
        return 7
    asyncio.run(main())
    """
    assert ok(sb, code)["value"] == 7


def test_stdlib_modules_work(sb):
    code = """
    import json, re, sqlite3, decimal, hashlib, datetime, zoneinfo, statistics, zlib, csv, io
    db = sqlite3.connect(':memory:')
    db.execute('create table t(x)'); db.executemany('insert into t values (?)', [(1,), (2,)])
    [json.loads('[1]')[0], bool(re.match(r'a+', 'aa')), db.execute('select sum(x) from t').fetchone()[0],
     str(decimal.Decimal('0.1') + decimal.Decimal('0.2')), hashlib.sha256(b'').hexdigest()[:8],
     datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo('UTC')).year, statistics.mean([1, 2, 3]),
     len(zlib.compress(b'x' * 100)) < 100]
    """
    assert ok(sb, code)["value"] == [1, True, 3, "0.3", "e3b0c442", 2024, 2, True]


def test_scratch_file_io_works(sb):
    code = """
    import os, pathlib, shutil, tempfile, sqlite3
    p = pathlib.Path('data'); p.mkdir()
    (p / 'a.txt').write_text('hello')
    os.rename(p / 'a.txt', p / 'b.txt')
    shutil.copy(p / 'b.txt', 'c.txt')
    os.truncate('c.txt', 2)
    os.symlink('c.txt', 'link')
    with tempfile.NamedTemporaryFile(dir=None) as f:
        f.write(b'x')
    db = sqlite3.connect('db.sqlite'); db.execute('create table t(x)'); db.commit()
    os.chmod('c.txt', 0o600)
    r = [open('link').read(), sorted(os.listdir('.')), os.environ['HOME'] == os.getcwd()]
    os.unlink('c.txt'); shutil.rmtree('data')
    r
    """
    assert ok(sb, code)["value"] == ["he", ["c.txt", "data", "db.sqlite", "link"], True]


def test_ctypes_works(sb):
    code = """
    import ctypes
    libc = ctypes.CDLL(None)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
    libc.qsort(arr, 5, ctypes.sizeof(ctypes.c_int), CMP(lambda a, b: a[0] - b[0]))
    [list(arr), libc.abs(-3)]
    """
    assert ok(sb, code)["value"] == [[1, 2, 3, 4, 5], 3]


def test_tool_calls_work_under_confinement(sb):
    r = ok(sb, "await add(a=2, b=3)", handlers={"add": lambda a, b: a + b})
    assert r["value"] == 5 and r["tool_calls"] == 1


def test_exceptions_reach_the_script_as_python_errors(sb):
    r = ok(sb, """
    try:
        open('/etc/shadow')
    except PermissionError as e:
        msg = str(e)
    msg
    """)
    assert r["value"] == "[Errno 13] Permission denied: '/etc/shadow'"


def test_client_env_reaches_the_child(sb):
    assert ok(sb, "import os; os.environ['GREETING']", env={"GREETING": "hi"})["value"] == "hi"


def test_site_packages_policy_runs_site(sb):
    code = "import sys; [p for p in sys.path if 'dist-packages' in p]"
    r = ok(sb, code, policy="site-packages")
    assert "/usr/lib/python3/dist-packages" in r["value"]
    assert sb.attempt("open('/etc/shadow')", policy="site-packages") == "DENIED PermissionError EACCES"
