# fern's gdb commands: list every greenlet of every thread, backtrace a
# parked one. Loaded automatically from the .debug_gdb_scripts section of a
# program linked with fern (when gdb's auto-load safe-path allows the
# program), or by hand: (gdb) source <prefix>/share/fern/fern_gdb.py
#
#   fern greenlets       every thread's greenlets: id, state, parent, stack
#                        used/size, task, what a parked one waits on, and the
#                        hub's loop statistics
#   fern bt ID [TID]     backtrace of greenlet ID (of thread TID, a Linux
#                        thread id as `fern greenlets` prints it; default: the
#                        selected thread's greenlet, else the first with ID)
#
# Needs fern's debug info (a Release build with -g is enough; FERN_DEBUG_INFO
# is on by default). `fern bt` needs a live process on x86-64: it points the
# selected thread's registers at the greenlet's saved context, prints the
# backtrace and restores them.
import gdb

# arch/x86_64_sysv.S: a suspended context's frame from its saved stack pointer.
_X86_64_SAVED = (("r15", 0), ("r14", 8), ("r13", 16), ("r12", 24), ("rbx", 32), ("rbp", 40))
_X86_64_RESUME = 48
_X86_64_FRAME = 56


def _ptr_int(v):
    return int(v.cast(gdb.lookup_type("unsigned long")))


def _threads():
    """(ThreadState value) for every thread with greenlets, newest first."""
    # Looked up globally: the selected frame may be in C code (epoll_wait).
    sym = gdb.lookup_global_symbol("fern::detail::g_registry")
    if sym is None:
        raise gdb.GdbError("fern: no fern::detail::g_registry: is fern linked, with debug info (-g)?")
    reg = sym.value()
    ts = reg["threads"]
    while _ptr_int(ts) != 0:
        yield ts.dereference()
        ts = ts["reg_next"]


def _greenlets(ts):
    impl = gdb.lookup_type("fern::detail::GreenletImpl").pointer()
    main = ts["main"]
    seen = []
    if _ptr_int(main) != 0:
        seen.append(main)
    h = ts["greenlets"]
    while _ptr_int(h) != 0:
        g = h.cast(impl)
        if _ptr_int(g) != _ptr_int(main):
            seen.append(g)
        h = h["reg_next"]
    return seen


def _gdb_thread(tid):
    for inf in gdb.inferiors():
        for th in inf.threads():
            if th.ptid[1] == tid:
                return th
    return None


def _running_sp(tid):
    th = _gdb_thread(tid)
    if th is None:
        return None
    old = gdb.selected_thread()
    try:
        th.switch()
        frame = gdb.newest_frame()
        return _ptr_int(frame.read_register("sp"))
    finally:
        if old is not None:
            old.switch()


def _string(v):
    try:
        return v.string()
    except gdb.error:
        return "?"


def _field_offset(type_, name):
    for f in type_.fields():
        if f.name == name:
            return f.bitpos // 8
    raise gdb.error("no field " + name)


def _task_name(addr):
    """A TaskBase's name: its extras' name if set, else gevent's default
    Greenlet-N (N from the extras' ident). Read from memory by field offsets:
    a TaskBase is polymorphic, and making a gdb value of it asks for its
    dynamic type (noisy for lambda tasks)."""
    task_t = gdb.lookup_type("fern::TaskBase")
    extras_t = gdb.lookup_type("fern::TaskBase::Extras")
    inf = gdb.selected_inferior()

    def word(at):
        return int.from_bytes(bytes(inf.read_memory(at, 8)), "little")

    # A std::unique_ptr with the default deleter is one pointer.
    extras = word(addr + _field_offset(task_t, "extras_"))
    if not extras:
        return "Greenlet-%d" % -1
    ident = word(extras + _field_offset(extras_t, "ident"))
    try:
        name_f = [f for f in extras_t.fields() if f.name == "name"][0]
        ptr = word(extras + name_f.bitpos // 8)
        if ptr:
            string_t = name_f.type.strip_typedefs().template_argument(0)
            v = gdb.Value(ptr).cast(string_t.pointer()).dereference()
            return v["_M_dataplus"]["_M_p"].string(length=int(v["_M_string_length"]))
    except (gdb.error, IndexError, RuntimeError):
        pass
    return "Greenlet-%d" % (ident - 1)


def _state(g, current):
    # The low three bits of the switch key (core/greenlet_core.h): 0 and 4
    # suspended, 1 running, 2 unstarted, 3 dead.
    s = int(g["key"]) & 7
    if s == 2:
        return "unstarted"
    if s == 3:
        return "dead"
    if _ptr_int(g) == _ptr_int(current):
        return "running"
    return "parked" if _ptr_int(g["park_what"]) != 0 else "suspended"


def _hub_impl(ts):
    hub = ts["hub"]
    if _ptr_int(hub) == 0:
        return None, None
    hub = hub.cast(gdb.lookup_type("fern::Hub").pointer())
    return hub, _ptr_int(hub["hub_impl_"])


def _ctz(x):
    return (x & -x).bit_length() - 1


# arch::stack_color (arch/stack.h, stack.cpp): a greenlet's first frame sits
# this many bytes below its stack's top (the guard is 64 KiB).
def _stack_color(base, size):
    if size >= 32 * 1024:
        return ((base >> _ctz(size + 65536)) & 15) * 64
    lines = size // 32 // 64
    if lines < 2:
        return 0
    colors = 1 << (lines.bit_length() - 1)
    return ((base >> _ctz(size + 65536)) & (colors - 1)) * 64


def _describe(ts, g, hub_impl, running_sp):
    current = ts["current"]
    state = _state(g, current)
    line = "  #%-4d %-9s " % (int(g["id"]), state)
    if bool(g["is_main"]):
        line += "parent -   "
    else:
        line += "parent #%-3d" % int(g["parent"]["id"])
    base = _ptr_int(g["stack"]["base"])
    size = int(g["stack"]["size"])
    if base != 0:
        top = base + size - _stack_color(base, size)
        sp = running_sp if state == "running" else _ptr_int(g["fiber"]["context"])
        used = top - sp if sp and base <= sp <= top and state not in ("dead", "unstarted") else 0
        line += " stack %d/%d" % (used, size)
    else:
        line += " stack -"
    if bool(g["is_main"]):
        line += "  main"
    elif hub_impl is not None and _ptr_int(g) == hub_impl:
        line += "  hub"
    elif _ptr_int(g["task"]) != 0:
        task = _ptr_int(g["task"])
        line += '  <Task "%s" at 0x%x>' % (_task_name(task), task)
    if state == "parked":
        what = _string(g["park_what"])
        obj = _ptr_int(g["park_object"])
        if what.startswith("fd "):
            line += "  %s fd %d" % (what, obj)
        elif obj:
            line += "  %s 0x%x" % (what, obj)
        else:
            line += "  " + what
    return line


def _stats_line(hub):
    s = hub["stats_"]
    # The iteration count lives in the hub's LoopMonitor (a std::atomic).
    counter = hub["monitor_"]["iterations"].address
    iterations = int(counter.cast(gdb.lookup_type("unsigned long").pointer()).dereference())
    return ("  loop: %d iterations, %d callbacks, %d timers fired, %d fd events, "
            "max callback batch %.3f ms" % (iterations, int(s["callbacks"]), int(s["timers"]),
                                            int(s["fd_events"]), int(s["max_batch"]) / 1e6))


class FernPrefix(gdb.Command):
    """fern's greenlet commands: fern greenlets, fern bt ID [TID]."""

    def __init__(self):
        super().__init__("fern", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class FernGreenlets(gdb.Command):
    """List every greenlet of every thread: id, state, parent, stack used/size, task, wait."""

    def __init__(self):
        super().__init__("fern greenlets", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        for ts in _threads():
            tid = int(ts["tid"])
            hub, hub_impl = _hub_impl(ts)
            gs = _greenlets(ts)
            gdb.write("fern: thread %d: %d greenlets\n" % (tid, len(gs)))
            sp = _running_sp(tid)
            for g in gs:
                gdb.write(_describe(ts, g, hub_impl, sp) + "\n")
            if hub is not None:
                gdb.write(_stats_line(hub) + "\n")


def _find(gid, tid):
    selected = gdb.selected_thread()
    sel_tid = selected.ptid[1] if selected is not None else None
    found = []
    for ts in _threads():
        if tid is not None and int(ts["tid"]) != tid:
            continue
        for g in _greenlets(ts):
            if int(g["id"]) == gid:
                found.append((ts, g))
    if not found:
        raise gdb.GdbError("fern: no greenlet #%d%s" % (gid, "" if tid is None else " in thread %d" % tid))
    for ts, g in found:
        if int(ts["tid"]) == sel_tid:
            return ts, g
    return found[0]


class FernBacktrace(gdb.Command):
    """Backtrace of a parked (suspended) greenlet: fern bt ID [TID] [bt options]."""

    def __init__(self):
        super().__init__("fern bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if not args:
            raise gdb.GdbError("usage: fern bt ID [TID]")
        gid = int(args[0])
        tid = int(args[1]) if len(args) > 1 else None
        ts, g = _find(gid, tid)
        state = _state(g, ts["current"])
        if state == "running":
            th = _gdb_thread(int(ts["tid"]))
            if th is not None:
                th.switch()
            gdb.execute("backtrace")
            return
        if state not in ("parked", "suspended"):
            raise gdb.GdbError("fern: greenlet #%d is %s: it has no stack to show" % (gid, state))
        arch = gdb.selected_frame().architecture().name()
        if "x86-64" not in arch:
            raise gdb.GdbError("fern bt: only x86-64 is supported (this is %s)" % arch)
        sp = _ptr_int(g["fiber"]["context"])
        inf = gdb.selected_inferior()

        def word(off):
            return int.from_bytes(bytes(inf.read_memory(sp + off, 8)), "little")

        regs = ["rsp", "rip"] + [r for r, _ in _X86_64_SAVED]
        frame = gdb.newest_frame()
        frame.select()  # register writes go to the innermost frame
        saved = {r: _ptr_int(frame.read_register(r)) for r in regs}
        gdb.write("fern: greenlet #%d (%s), saved context at 0x%x\n" % (gid, state, sp))
        try:
            for r, off in _X86_64_SAVED:
                gdb.execute("set $%s = %d" % (r, word(off)), to_string=True)
            gdb.execute("set $rsp = %d" % (sp + _X86_64_FRAME), to_string=True)
            gdb.execute("set $rip = %d" % word(_X86_64_RESUME), to_string=True)
            gdb.execute("backtrace")
        finally:
            for r in regs:
                gdb.execute("set $%s = %d" % (r, saved[r]), to_string=True)


FernPrefix()
FernGreenlets()
FernBacktrace()
