"""espeak-ng without starting its program per utterance: the same samples, faster.

Starting the ``espeak-ng`` program per utterance (exec, loading, initialisation) is most of what a
corpus utterance costs (17.8 ms each on one thread here, 12.3 ms through this module; a whole
corpus build takes ~0.8x the time: benchmarks/synth_speed.py). This module, run as a script by :class:`EspeakWorker`, loads
libespeak-ng once, initialises it as the program does, and then forks one child per utterance. A
child starts from that freshly initialised state, as the program does, so its samples are the
program's to the bit (tests/test_espeak_worker.py compares them). Calling the library again and
again in one process would not: espeak-ng keeps state from one utterance to the next.

The script imports nothing but the standard library (it runs with ``python -S``). Requests are one
line each, ``hex(voice)<TAB>rate<TAB>pitch<TAB>hex(text)``; a reply is a signed 8-byte length, then that
many bytes of 16-bit samples at 22,050 Hz (a negative length is an error code).
:func:`synthesize` hands each request to an idle worker (one per concurrent caller, started on first
use). Before the first, it checks one sentence against the program (:func:`agrees_with_program`).
Where the library cannot be loaded, where it disagrees with the program, where ``os.fork`` is
missing, or with ``ASR_PATHWAYS_ESPEAK=program`` in the environment, it returns None and the caller
runs the program.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import struct
import subprocess
import sys
import threading

# espeak-ng's constants (speak_lib.h, espeak_ng.h), as the program uses them with -b 1 and --stdout
SYNCHRONOUS = 0x0001  # ENOUTPUT_MODE_SYNCHRONOUS
RATE, PITCH = 1, 3  # espeakRATE, espeakPITCH
POS_CHARACTER = 1
FLAGS = 1 | 0x100 | 0x1000  # espeakCHARS_UTF8 | espeakPHONEMES | espeakENDPAUSE
LINE = 1000  # the program reads stdin with fgets(p, 1000, stdin): at most 999 bytes per espeak_Synth call
ERR_VOICE, ERR_SYNTH, ERR_CHILD = -2, -3, -4


def program_chunks(text: bytes) -> list[bytes]:
    """The pieces the espeak-ng program passes to espeak_Synth when ``text`` comes on stdin: lines
    (with their newline; only ``\\n`` ends a line) cut into pieces of at most 999 bytes, as ``fgets``
    reads them.

    >>> program_chunks(b"ab\\ncd")
    [b'ab\\n', b'cd']
    >>> program_chunks(b"a\\rb")
    [b'a\\rb']
    >>> [len(c) for c in program_chunks(b"x" * 2000)]
    [999, 999, 2]
    """
    chunks: list[bytes] = []
    lines = [line + b"\n" for line in text.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    for line in (x for x in lines if x):
        chunks += [line[i : i + LINE - 1] for i in range(0, len(line), LINE - 1)]
    return chunks


class _Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


class WorkerStopped(RuntimeError):
    """The worker process ended or its pipe broke (not a synthesis error)."""


class EspeakWorker:
    """One worker process (this file run as a script) and its pipes."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def synthesize(self, voice: str, rate: int, pitch: int, text: str) -> bytes:
        """16-bit samples at 22,050 Hz; RuntimeError when espeak-ng fails."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(f"{voice.encode('utf-8').hex()}\t{int(rate)}\t{int(pitch)}\t{text.encode('utf-8').hex()}\n".encode())
            self.proc.stdin.flush()
            head = self.proc.stdout.read(8)
        except OSError:  # the worker is gone (BrokenPipeError)
            raise WorkerStopped("the espeak-ng worker stopped") from None
        if len(head) < 8:
            raise WorkerStopped("the espeak-ng worker stopped")
        (n,) = struct.unpack("<q", head)
        if n < 0:
            raise RuntimeError({ERR_VOICE: f"no voice {voice!r}", ERR_SYNTH: "synthesis failed"}.get(n, "the synthesising process failed"))
        data = self.proc.stdout.read(n)
        if len(data) < n:
            raise WorkerStopped("the espeak-ng worker stopped")
        return data

    def close(self) -> None:
        """Stop the worker (closing its stdin ends its loop) and reap it."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_worker() -> EspeakWorker | None:
    """A new worker, or None where libespeak-ng cannot be loaded (or ``os.fork`` is missing)."""
    if not hasattr(os, "fork") or not sys.executable:
        return None
    try:
        proc = subprocess.Popen([sys.executable, "-S", os.path.abspath(__file__)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    except OSError:
        return None
    assert proc.stdout is not None
    if proc.stdout.readline() != b"ok\n":
        proc.kill()
        proc.wait()
        return None
    return EspeakWorker(proc)


_lock = threading.Lock()
_idle: list[EspeakWorker] = []
_available: bool | None = None  # None: not tried yet
served = 0  # utterances synthesised by workers in this process (benchmarks/synth_speed.py checks it)


CHECK = ("en", 175, 50, "The quick brown fox jumps over the lazy dog, twice.")  # voice, rate, pitch, text


def agrees_with_program(worker: EspeakWorker, check: tuple[str, int, int, str] = CHECK) -> bool:
    """Whether ``worker`` gives the espeak-ng program's samples for one sentence (checked once per
    process, before the first worker is used: a libespeak-ng of another build or version than the
    program on the PATH would not). True where the program cannot be run: then the worker is all there is."""
    voice, rate, pitch, text = check
    cmd = ["espeak-ng", "-b", "1", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout"]
    try:
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return True
    pcm = proc.stdout[proc.stdout.find(b"data") + 8 :] if proc.returncode == 0 and b"data" in proc.stdout else None
    try:
        return pcm is not None and worker.synthesize(voice, rate, pitch, text) == pcm[: len(pcm) // 2 * 2]
    except RuntimeError:
        return False


def synthesize(voice: str, rate: int, pitch: int, text: str) -> bytes | None:
    """The espeak-ng program's samples for ``text`` (``-v voice -s rate -p pitch -b 1 --stdout``,
    text on stdin) as 16-bit bytes at 22,050 Hz, from an idle worker; None: run the program instead.
    Thread-safe: concurrent callers get their own workers."""
    global _available, served
    if _available is False or os.environ.get("ASR_PATHWAYS_ESPEAK") == "program":
        return None
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = start_worker()
        if worker is not None and _available is None and not agrees_with_program(worker):
            worker.close()  # another libespeak-ng than the program's: the program's samples are the reference
            worker = None
        _available = worker is not None
        if worker is None:
            return None
    try:
        data = worker.synthesize(voice, rate, pitch, text)
    except WorkerStopped:  # a broken worker: drop it; this utterance goes to the program
        worker.close()
        return None
    except RuntimeError:  # espeak-ng could not say it: the worker is fine
        with _lock:
            _idle.append(worker)
        raise
    with _lock:
        _idle.append(worker)
        served += 1
    return data


@atexit.register
def close_workers() -> None:
    """Stop the idle workers (at exit; callers may also call it when done)."""
    with _lock:
        workers, _idle[:] = list(_idle), []
    for w in workers:
        w.close()


def _serve() -> None:
    """The worker's loop (this file run as a script): initialise once, fork per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the caller, which closes our stdin
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "wb")  # replies go on a private copy of stdout ...
    os.dup2(2, 1)  # ... so that anything the library prints to fd 1 goes to stderr, not into a reply
    try:
        lib = ctypes.CDLL("libespeak-ng.so.1")
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        samples: list[bytes] = []
        callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)(
            lambda wav, n, events: (samples.append(ctypes.string_at(wav, 2 * n)) if wav and n > 0 else None) or 0)
        lib.espeak_ng_InitializePath(None)
        if lib.espeak_ng_Initialize(ctypes.byref(ctypes.c_void_p())) != 0 or lib.espeak_ng_InitializeOutput(SYNCHRONOUS, 0, None) != 0:
            raise OSError("espeak-ng did not initialise")
        lib.espeak_SetSynthCallback(callback)
    except (OSError, AttributeError):
        out.write(b"no\n")
        out.flush()
        return
    out.write(b"ok\n")
    out.flush()
    for line in sys.stdin.buffer:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the state right after initialisation, as the program has it
            try:
                os.close(read)
                voice_hex, rate, pitch, text = line.rstrip(b"\n").split(b"\t")
                voice = bytes.fromhex(voice_hex.decode())
                code = 0
                if lib.espeak_ng_SetVoiceByName(voice) != 0:
                    selector = _Voice(languages=voice)
                    if lib.espeak_ng_SetVoiceByProperties(ctypes.byref(selector)) != 0:
                        code = ERR_VOICE
                if code == 0:
                    lib.espeak_SetParameter(RATE, int(rate), 0)
                    lib.espeak_SetParameter(PITCH, int(pitch), 0)
                    for chunk in program_chunks(bytes.fromhex(text.decode())):
                        if lib.espeak_Synth(chunk, LINE, 0, POS_CHARACTER, 0, FLAGS, None, None) != 0:
                            code = ERR_SYNTH
                            break
                    if code == 0 and lib.espeak_ng_Synchronize() != 0:
                        code = ERR_SYNTH
                data = b"".join(samples) if code == 0 else b""
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(struct.pack("<q", len(data) if code == 0 else code) + data)
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            reply = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or len(reply) < 8:
            reply = struct.pack("<q", ERR_CHILD)
        out.write(reply)
        out.flush()


if __name__ == "__main__":
    _serve()
