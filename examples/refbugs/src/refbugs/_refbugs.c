/*
 * _refbugs: deliberately buggy C extension functions, each with a clean twin.
 *
 * In the spirit of the classic cPyRefs teaching example: every bug here
 * "works" functionally (the tests pass on a release build), and only a debug
 * interpreter, a trace-refs build, a debug allocator or valgrind shows it.
 *
 *   leak_new_ref(obj)      returns [obj] but leaks a freshly allocated list
 *                          every call: +1 total refcount, +1 allocated block,
 *                          and one more `list` in sys.getobjects() per call.
 *   no_leak_new_ref(obj)   the same work, done correctly.
 *
 *   use_after_free()       reads 16 bytes of a bytes object's buffer *after*
 *                          Py_DECREF freed it, and returns their sum.
 *                          valgrind memcheck: "Invalid read" in use_after_free;
 *                          PYTHONMALLOC=malloc_debug / pymalloc_debug: the read
 *                          sees the 0xDD "dead byte" pattern (sum 16 * 0xDD).
 *   no_use_after_free()    reads the same bytes before freeing them.
 *
 *   racy_count(n)          adds 1 to a shared static counter n times with a plain
 *                          `counter++`, no lock, no atomic: called from several
 *                          threads of a free-threaded interpreter it is a data race
 *                          (ThreadSanitizer reports both stacks; updates get lost).
 *   atomic_count(n)        the same with an atomic add: no race.
 *
 *   shift_left(x, n)       returns x << n in C `long` arithmetic with no range check:
 *                          shift_left(1, 64) shifts by the type's width, undefined
 *                          behaviour (UBSan: "shift exponent 64 is too large"). Not
 *                          signed overflow: CPython builds extensions with
 *                          -fno-strict-overflow, which defines it (it wraps).
 *   checked_shift_left(x, n)  the same with the range checked: ValueError.
 *
 * The module declares that it does not need the GIL (Py_MOD_GIL_NOT_USED on
 * free-threaded builds), so importing it keeps a free-threaded interpreter
 * free-threaded and the race can happen.
 *
 * Builds against the 3.11 and 3.13 headers without warnings under -Wall (gcc, clang).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define UAF_SIZE 100
#define UAF_READ 16

/* Counter so every leaked object is a distinct, freshly allocated one; atomic, so that
 * threads calling these functions at once (race hunting) do not race on it. */
static long leak_counter = 0;

static long
next_tag(void)
{
    return __atomic_fetch_add(&leak_counter, 1, __ATOMIC_RELAXED);
}

/* Fill `buf` with a recognisable, non-zero pattern (1, 2, 3, ...). */
static void
fill_pattern(char *buf, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        buf[i] = (char)(1 + (i % 127));
    }
}

static PyObject *
build_result(PyObject *obj)
{
    PyObject *result = PyList_New(1);
    if (result == NULL) {
        return NULL;
    }
    Py_INCREF(obj);
    PyList_SET_ITEM(result, 0, obj); /* steals the new reference */
    return result;
}

/* BUG: a scratch list is created and never released. */
static PyObject *
leak_new_ref(PyObject *module, PyObject *obj)
{
    (void)module;
    PyObject *scratch = PyList_New(0);
    if (scratch == NULL) {
        return NULL;
    }
    /* Pretend we use the scratch list for bookkeeping. */
    PyObject *tag = PyLong_FromLong(1000000000L + next_tag());
    if (tag == NULL) {
        Py_DECREF(scratch);
        return NULL;
    }
    if (PyList_Append(scratch, tag) < 0) {
        Py_DECREF(tag);
        Py_DECREF(scratch);
        return NULL;
    }
    Py_DECREF(tag);                      /* the list holds it now */
    PyObject *result = build_result(obj);
    /* Missing: Py_DECREF(scratch);  -> the list (and its tag int) leak. */
    return result;
}

/* Clean twin of leak_new_ref. */
static PyObject *
no_leak_new_ref(PyObject *module, PyObject *obj)
{
    (void)module;
    PyObject *scratch = PyList_New(0);
    if (scratch == NULL) {
        return NULL;
    }
    PyObject *tag = PyLong_FromLong(1000000000L + next_tag());
    if (tag == NULL) {
        Py_DECREF(scratch);
        return NULL;
    }
    if (PyList_Append(scratch, tag) < 0) {
        Py_DECREF(tag);
        Py_DECREF(scratch);
        return NULL;
    }
    Py_DECREF(tag);
    PyObject *result = build_result(obj);
    Py_DECREF(scratch);
    return result;
}

/* BUG: reads a buffer after the object owning it was freed. */
static PyObject *
use_after_free(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, UAF_SIZE);
    if (bytes == NULL) {
        return NULL;
    }
    /* volatile: keep the compiler from folding or moving the reads. */
    volatile const unsigned char *dangling =
        (const unsigned char *)PyBytes_AS_STRING(bytes);
    fill_pattern(PyBytes_AS_STRING(bytes), UAF_SIZE);

    Py_DECREF(bytes); /* refcount 1 -> 0: the memory is freed here */

    long sum = 0;
    for (int i = 0; i < UAF_READ; i++) {
        sum += dangling[i]; /* BUG: invalid read of freed memory */
    }
    return PyLong_FromLong(sum);
}

/* Clean twin of use_after_free: read first, free afterwards. */
static PyObject *
no_use_after_free(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, UAF_SIZE);
    if (bytes == NULL) {
        return NULL;
    }
    char *data = PyBytes_AS_STRING(bytes);
    fill_pattern(data, UAF_SIZE);

    volatile const unsigned char *p = (const unsigned char *)data;
    long sum = 0;
    for (int i = 0; i < UAF_READ; i++) {
        sum += p[i];
    }
    Py_DECREF(bytes);
    return PyLong_FromLong(sum);
}

/* Shared by every thread; racy_count touches it without synchronisation. */
static long racy_counter = 0;
static long atomic_counter = 0;

/* BUG: an unsynchronised read-modify-write of shared state. */
static PyObject *
racy_count(PyObject *module, PyObject *arg)
{
    (void)module;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    for (long i = 0; i < n; i++) {
        racy_counter++; /* BUG: a data race when threads run this at once */
    }
    return PyLong_FromLong(racy_counter);
}

/* Clean twin of racy_count: the same counting, atomically. */
static PyObject *
atomic_count(PyObject *module, PyObject *arg)
{
    (void)module;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    for (long i = 0; i < n; i++) {
        __atomic_fetch_add(&atomic_counter, 1, __ATOMIC_RELAXED);
    }
    return PyLong_FromLong(__atomic_load_n(&atomic_counter, __ATOMIC_RELAXED));
}

/* BUG: a shift by n >= the width of long is undefined behaviour in C. */
static PyObject *
shift_left(PyObject *module, PyObject *args)
{
    (void)module;
    long x;
    int n;
    if (!PyArg_ParseTuple(args, "li:shift_left", &x, &n)) {
        return NULL;
    }
    volatile int amount = n;
    unsigned long result = (unsigned long)x << amount; /* BUG: no range check */
    return PyLong_FromUnsignedLong(result);
}

/* Clean twin of shift_left: the shift amount is checked. */
static PyObject *
checked_shift_left(PyObject *module, PyObject *args)
{
    (void)module;
    long x;
    int n;
    if (!PyArg_ParseTuple(args, "li:checked_shift_left", &x, &n)) {
        return NULL;
    }
    if (n < 0 || n >= (int)(8 * sizeof(unsigned long))) {
        PyErr_Format(PyExc_ValueError, "checked_shift_left: shift %d out of range", n);
        return NULL;
    }
    return PyLong_FromUnsignedLong((unsigned long)x << n);
}

static PyMethodDef refbugs_methods[] = {
    {"leak_new_ref", leak_new_ref, METH_O,
     "leak_new_ref(obj) -> [obj]; BUG: leaks one new list per call."},
    {"no_leak_new_ref", no_leak_new_ref, METH_O,
     "no_leak_new_ref(obj) -> [obj]; clean twin of leak_new_ref."},
    {"use_after_free", use_after_free, METH_NOARGS,
     "use_after_free() -> int; BUG: sums 16 bytes of a freed buffer."},
    {"no_use_after_free", no_use_after_free, METH_NOARGS,
     "no_use_after_free() -> int; clean twin of use_after_free."},
    {"racy_count", racy_count, METH_O,
     "racy_count(n) -> int; BUG: adds 1 to a shared counter n times without synchronisation."},
    {"atomic_count", atomic_count, METH_O,
     "atomic_count(n) -> int; clean twin of racy_count (atomic adds)."},
    {"shift_left", shift_left, METH_VARARGS,
     "shift_left(x, n) -> int; BUG: x << n without a range check (UB for n >= 64)."},
    {"checked_shift_left", checked_shift_left, METH_VARARGS,
     "checked_shift_left(x, n) -> int; clean twin of shift_left (ValueError)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef refbugs_module = {
    PyModuleDef_HEAD_INIT,
    "_refbugs",
    "Deliberate reference-counting and memory bugs, each with a clean twin.",
    -1,
    refbugs_methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__refbugs(void)
{
    PyObject *m = PyModule_Create(&refbugs_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "UAF_READ", UAF_READ) < 0
        || PyModule_AddIntConstant(m, "UAF_SIZE", UAF_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    /* Safe to run without the GIL (racy_count's race is the deliberate bug). */
    if (PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
