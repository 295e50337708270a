/* Native kernel of the timing model (solver/timing.py): the fast path for schedules that validate.
 *
 * It runs the same (time, phase, sequence) event simulation as the pure-Python reference in
 * solver/timing.py, on plain arrays, and gives up (returns None) at the first thing that is not
 * a clean, valid schedule: an unknown name, a missing link, ops out of order, any error code of
 * the spec, an action that never starts. The caller then runs the reference, which finds and
 * words every error. So this file never decides that a schedule is invalid: it only computes the
 * times and metrics of a valid one faster, and the tests check that both paths agree exactly.
 *
 * simulate(actions, classes, op_index, op_ids, tensor_index, tensor_ids, tier_index, links, n_streams,
 *          op_dur, op_ws, op_recomputable, reads, writes, updates, dies,
 *          nbytes, init_tier, final_req, cap, compute_tier, kind_names, stream_names)
 *   -> None, or (ids, kinds, streams, starts, ends, peak, peak_time, moved, copies,
 *                compute_time, recompute_time, makespan)
 * See solver/timing.py (_native_report) for the meaning of each argument.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { K_RUN = 0, K_RECOMPUTE = 1, K_COPY = 2, K_FREE = 3 };
enum { PH_END = 0, PH_FREE = 1, PH_START = 2 };
enum { ST_ARRIVING = 1, ST_VALID = 2 };

typedef struct { double time; int32_t phase; int32_t seq; } Event;

/* Compressed rows of small integer lists (an op's reads, writes, ...). */
typedef struct { int64_t *off; int32_t *val; } Rows;

typedef struct {
    /* per action */
    Py_ssize_t n;
    int8_t *kind;
    int32_t *arg;       /* op (run/recompute) or tensor (copy/free) */
    int32_t *src, *dst; /* copy: tiers; free: dst = tier */
    int32_t *stream;    /* -1 for frees */
    uint8_t *free_src;
    double *dur;
    int64_t *pred_off;
    int32_t *pred;
    /* per op */
    Py_ssize_t n_ops;
    double *op_dur;
    int64_t *op_ws;
    uint8_t *op_rec;
    Rows reads, writes, upds, dies;
    /* per tensor */
    Py_ssize_t n_tensors;
    int64_t *nbytes;
    /* hardware */
    int T, C, n_streams;
    int64_t *cap;
} Sim;

static void sim_free(Sim *s) {
    free(s->kind); free(s->arg); free(s->src); free(s->dst); free(s->stream); free(s->free_src);
    free(s->dur); free(s->pred_off); free(s->pred); free(s->op_dur); free(s->op_ws); free(s->op_rec);
    free(s->reads.off); free(s->reads.val); free(s->writes.off); free(s->writes.val);
    free(s->upds.off); free(s->upds.val); free(s->dies.off); free(s->dies.val);
    free(s->nbytes); free(s->cap);
}

/* The items of `seq` (a list or tuple of length n); *fast holds a new reference to it, or NULL on
 * error (the items pointer itself may be NULL for an empty list). */
static PyObject **items_of(PyObject *seq, Py_ssize_t n, PyObject **fast) {
    *fast = PySequence_Fast(seq, "expected a sequence");
    if (!*fast) return NULL;
    if (PySequence_Fast_GET_SIZE(*fast) != n) {
        Py_CLEAR(*fast);
        PyErr_SetString(PyExc_ValueError, "sequence of the wrong length");
        return NULL;
    }
    return PySequence_Fast_ITEMS(*fast);
}

/* -1 on a Python error (raised), 0 otherwise. */
static int rows_from(PyObject *seq, Py_ssize_t n, Rows *r) {
    PyObject *fast;
    PyObject **items = items_of(seq, n, &fast);
    if (!fast) return -1;
    r->off = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t total = 0;
    if (!r->off) { Py_DECREF(fast); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = PyObject_Length(items[i]);
        if (k < 0) { Py_DECREF(fast); return -1; }
        r->off[i] = total;
        total += k;
    }
    r->off[n] = total;
    r->val = malloc(sizeof(int32_t) * (size_t)(total + 1));
    if (!r->val) { Py_DECREF(fast); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PySequence_Fast(items[i], "a row must be a sequence");
        if (!row) { Py_DECREF(fast); return -1; }
        Py_ssize_t k = PySequence_Fast_GET_SIZE(row);
        PyObject **vals = PySequence_Fast_ITEMS(row);
        for (Py_ssize_t j = 0; j < k; j++) {
            long v = PyLong_AsLong(vals[j]);
            if (v == -1 && PyErr_Occurred()) { Py_DECREF(row); Py_DECREF(fast); return -1; }
            r->val[r->off[i] + j] = (int32_t)v;
        }
        Py_DECREF(row);
    }
    Py_DECREF(fast);
    return 0;
}

static int i64_from(PyObject *seq, Py_ssize_t n, int64_t **out) {
    PyObject *fast;
    PyObject **items = items_of(seq, n, &fast);
    if (!fast) return -1;
    int rc = 0;
    *out = malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!*out) { PyErr_NoMemory(); rc = -1; }
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        long long v = PyLong_AsLongLong(items[i]);
        if (v == -1 && PyErr_Occurred()) rc = -1;
        (*out)[i] = (int64_t)v;
    }
    Py_DECREF(fast);
    return rc;
}

static int f64_from(PyObject *seq, Py_ssize_t n, double **out) {
    PyObject *fast;
    PyObject **items = items_of(seq, n, &fast);
    if (!fast) return -1;
    int rc = 0;
    *out = malloc(sizeof(double) * (size_t)(n + 1));
    if (!*out) { PyErr_NoMemory(); rc = -1; }
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        double v = PyFloat_AsDouble(items[i]);
        if (v == -1.0 && PyErr_Occurred()) rc = -1;
        (*out)[i] = v;
    }
    Py_DECREF(fast);
    return rc;
}

/* Index of `key` in `dict` (an int value), -1 when absent, -2 on a Python error. */
static long dict_index(PyObject *dict, PyObject *key) {
    PyObject *v = PyDict_GetItemWithError(dict, key);
    if (!v) return PyErr_Occurred() ? -2 : -1;
    long r = PyLong_AsLong(v);
    if (r == -1 && PyErr_Occurred()) return -2;
    return r;
}

/* Equality of two str objects without hashing (for the cheap guesses before a dict lookup). */
static inline int str_eq(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b)) return PyObject_RichCompareBool(a, b, Py_EQ) == 1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(a);
    if (len != PyUnicode_GET_LENGTH(b) || PyUnicode_KIND(a) != PyUnicode_KIND(b)) return 0;
    return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)len * PyUnicode_KIND(a)) == 0;
}

/* Result codes of the compile and simulate steps. */
enum { OK = 0, BAIL = 1, FAIL = -1 };

/* Resolve names and waits: fills the per-action arrays. BAIL on anything the reference reports. */
static int compile_actions(Sim *s, PyObject *actions, PyObject *classes, PyObject *op_index,
                           PyObject *tensor_index, PyObject *tier_index, PyObject *links,
                           PyObject *op_ids, PyObject *tensor_ids, PyObject **ids_out) {
    Py_ssize_t n = PyList_GET_SIZE(actions);
    PyObject *RunT, *RecT, *CopyT, *FreeT;
    if (!PyArg_ParseTuple(classes, "OOOO", &RunT, &RecT, &CopyT, &FreeT)) return FAIL;
    PyObject *a_id = PyUnicode_InternFromString("id"), *a_op = PyUnicode_InternFromString("op");
    PyObject *a_after = PyUnicode_InternFromString("after"), *a_tensor = PyUnicode_InternFromString("tensor");
    PyObject *a_src = PyUnicode_InternFromString("src"), *a_dst = PyUnicode_InternFromString("dst");
    PyObject *a_fs = PyUnicode_InternFromString("free_src"), *a_tier = PyUnicode_InternFromString("tier");
#if PY_VERSION_HEX < 0x030D0000
    PyObject *index = _PyDict_NewPresized(PyList_GET_SIZE(actions));   /* no rehashing as it grows */
#else
    PyObject *index = PyDict_New();
#endif
    PyObject *ids = PyList_New(n);
    PyObject **afters = calloc((size_t)n + 1, sizeof(PyObject *));
    int32_t *last = NULL;
    int rc = FAIL;
    if (!a_id || !a_op || !a_after || !a_tensor || !a_src || !a_dst || !a_fs || !a_tier || !index || !ids
        || !afters)
        goto done;
    s->n = n;
    s->kind = malloc((size_t)n + 1);
    s->arg = malloc(sizeof(int32_t) * ((size_t)n + 1));
    s->src = malloc(sizeof(int32_t) * ((size_t)n + 1));
    s->dst = malloc(sizeof(int32_t) * ((size_t)n + 1));
    s->stream = malloc(sizeof(int32_t) * ((size_t)n + 1));
    s->free_src = calloc((size_t)n + 1, 1);
    s->dur = malloc(sizeof(double) * ((size_t)n + 1));
    s->pred_off = malloc(sizeof(int64_t) * ((size_t)n + 1));
    last = malloc(sizeof(int32_t) * ((size_t)s->n_streams + 1));
    if (!s->kind || !s->arg || !s->src || !s->dst || !s->stream || !s->free_src || !s->dur || !s->pred_off
        || !last) {
        PyErr_NoMemory();
        goto done;
    }
    for (int k = 0; k < s->n_streams; k++) last[k] = -1;
    /* pass 1: ids, kinds, arguments, the number of waits */
    int64_t n_preds = 0;
    int32_t last_t = -1, last_o = -1;
    Py_ssize_t next_run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyList_GET_ITEM(actions, i);
        PyTypeObject *typ = Py_TYPE(a);
        PyObject *id = PyObject_GetAttr(a, a_id);
        if (!id) goto done;
        PyList_SET_ITEM(ids, i, id);
        PyObject *pos = PyLong_FromSsize_t(i);
        if (!pos) goto done;
        int set = PyDict_SetItem(index, id, pos);
        Py_DECREF(pos);
        if (set < 0) goto done;
        PyObject *after = PyObject_GetAttr(a, a_after);
        if (!after) goto done;
        if (!PyTuple_Check(after)) { Py_DECREF(after); rc = BAIL; goto done; }
        afters[i] = after;
        n_preds += PyTuple_GET_SIZE(after) + 1;
        s->stream[i] = -1;
        s->src[i] = s->dst[i] = -1;
        if (typ == (PyTypeObject *)RunT || typ == (PyTypeObject *)RecT) {
            PyObject *op = PyObject_GetAttr(a, a_op);
            if (!op) goto done;
            /* runs come in trace order: try the next op's id before the dict */
            long o = next_run < s->n_ops && str_eq(op, PyTuple_GET_ITEM(op_ids, next_run))
                ? (long)next_run : dict_index(op_index, op);
            Py_DECREF(op);
            if (o == -2) goto done;
            if (o < 0) { rc = BAIL; goto done; }
            if (typ == (PyTypeObject *)RunT) {
                if (o != next_run) { rc = BAIL; goto done; }   /* order */
                next_run++;
                s->kind[i] = K_RUN;
            } else {
                s->kind[i] = K_RECOMPUTE;
            }
            s->arg[i] = (int32_t)o;
            last_o = (int32_t)o;
            s->dur[i] = s->op_dur[o];
            s->stream[i] = 0;
        } else if (typ == (PyTypeObject *)CopyT || typ == (PyTypeObject *)FreeT) {
            PyObject *tn = PyObject_GetAttr(a, a_tensor);
            if (!tn) goto done;
            /* copies and frees mostly name the tensor of the previous copy or one the last op
               read or wrote: try those before the dict */
            long t = -1;
            if (last_t >= 0 && str_eq(tn, PyTuple_GET_ITEM(tensor_ids, last_t))) t = last_t;
            for (int pass = 0; t < 0 && last_o >= 0 && pass < 2; pass++) {
                const Rows *r = pass ? &s->writes : &s->reads;
                for (int64_t k = r->off[last_o]; k < r->off[last_o + 1]; k++)
                    if (str_eq(tn, PyTuple_GET_ITEM(tensor_ids, r->val[k]))) { t = r->val[k]; break; }
            }
            if (t < 0) t = dict_index(tensor_index, tn);
            Py_DECREF(tn);
            if (t == -2) goto done;
            if (t < 0) { rc = BAIL; goto done; }
            s->arg[i] = (int32_t)t;
            last_t = (int32_t)t;
            if (typ == (PyTypeObject *)CopyT) {
                PyObject *sn = PyObject_GetAttr(a, a_src);
                if (!sn) goto done;
                PyObject *row = PyDict_GetItemWithError(links, sn);
                Py_DECREF(sn);
                if (!row) { if (PyErr_Occurred()) goto done; rc = BAIL; goto done; }
                PyObject *dn = PyObject_GetAttr(a, a_dst);
                if (!dn) goto done;
                PyObject *info = PyDict_GetItemWithError(row, dn);
                Py_DECREF(dn);
                if (!info) { if (PyErr_Occurred()) goto done; rc = BAIL; goto done; }
                int si, di, st;
                double lat, bw;
                if (!PyArg_ParseTuple(info, "iiddi", &si, &di, &lat, &bw, &st)) goto done;
                PyObject *fs = PyObject_GetAttr(a, a_fs);
                if (!fs) goto done;
                int f = PyObject_IsTrue(fs);
                Py_DECREF(fs);
                if (f < 0) goto done;
                s->kind[i] = K_COPY;
                s->src[i] = si;
                s->dst[i] = di;
                s->stream[i] = st;
                s->free_src[i] = (uint8_t)f;
                s->dur[i] = lat + (double)s->nbytes[t] / bw;
            } else {
                PyObject *tier = PyObject_GetAttr(a, a_tier);
                if (!tier) goto done;
                long d = dict_index(tier_index, tier);
                Py_DECREF(tier);
                if (d == -2) goto done;
                if (d < 0) { rc = BAIL; goto done; }
                s->kind[i] = K_FREE;
                s->dst[i] = (int32_t)d;
                s->dur[i] = 0.0;
            }
        } else {
            rc = BAIL;
            goto done;
        }
    }
    if (next_run != s->n_ops) { rc = BAIL; goto done; }
    /* With unique ids, a wait on one of the last few actions is found by comparing names; with
       duplicates the reference takes the last action of that id, so only the dict will do. */
    int window = PyDict_GET_SIZE(index) == n ? 8 : 0;
    /* pass 2: waits (after, then the previous action on the same stream), as the reference */
    s->pred = malloc(sizeof(int32_t) * ((size_t)n_preds + 1));
    if (!s->pred) { PyErr_NoMemory(); goto done; }
    int64_t p = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        s->pred_off[i] = p;
        PyObject *after = afters[i];
        Py_ssize_t k = PyTuple_GET_SIZE(after);
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *name = PyTuple_GET_ITEM(after, j);
            long w = -1;
            for (Py_ssize_t back = i - 1; back >= 0 && back >= i - window; back--)
                if (str_eq(name, PyList_GET_ITEM(ids, back))) { w = (long)back; break; }
            if (w < 0) w = dict_index(index, name);
            if (w == -2) goto done;
            if (w < 0) { rc = BAIL; goto done; }
            s->pred[p++] = (int32_t)w;
        }
        int st = s->stream[i];
        if (st >= 0) {
            if (last[st] >= 0) s->pred[p++] = last[st];
            last[st] = (int32_t)i;
        }
    }
    s->pred_off[n] = p;
    rc = OK;
done:
    if (rc == OK) {
        *ids_out = ids;
    } else {
        Py_XDECREF(ids);
    }
    if (afters) {
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(afters[i]);
        free(afters);
    }
    free(last);
    Py_XDECREF(index);
    Py_XDECREF(a_id); Py_XDECREF(a_op); Py_XDECREF(a_after); Py_XDECREF(a_tensor);
    Py_XDECREF(a_src); Py_XDECREF(a_dst); Py_XDECREF(a_fs); Py_XDECREF(a_tier);
    return rc;
}

/* -- a binary min-heap of events ordered by (time, phase, seq) -------------------------------- */
static inline int ev_less(const Event *a, const Event *b) {
    if (a->time != b->time) return a->time < b->time;
    if (a->phase != b->phase) return a->phase < b->phase;
    return a->seq < b->seq;
}

static inline void heap_push(Event *h, Py_ssize_t *size, Event e) {
    Py_ssize_t i = (*size)++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) >> 1;
        if (!ev_less(&e, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static inline Event heap_pop(Event *h, Py_ssize_t *size) {
    Event top = h[0];
    Event last = h[--(*size)];
    Py_ssize_t n = *size, i = 0;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ev_less(&h[c + 1], &h[c])) c++;
        if (!ev_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0) h[i] = last;
    return top;
}

static inline int contains(const Rows *r, int32_t row, int32_t v) {
    for (int64_t k = r->off[row]; k < r->off[row + 1]; k++)
        if (r->val[k] == v) return 1;
    return 0;
}

typedef struct {
    uint8_t *state, *alive;
    int64_t *usage, *peak;
    double *peak_time;
    int32_t *inflight;
    int32_t running_op;
    int32_t *outs;      /* the outputs the compute action in flight allocated */
    int64_t n_outs;
} State;

/* The reference's in_use: an op in flight reads it (compute tier), or a copy in flight reads
 * or writes this copy. */
static inline int in_use(const Sim *s, const State *q, int32_t t, int tier) {
    if (tier == s->C && q->running_op >= 0 && contains(&s->reads, q->running_op, t)) return 1;
    for (int st = 1; st < s->n_streams; st++) {
        int32_t c = q->inflight[st];
        if (c >= 0 && s->arg[c] == t && (s->src[c] == tier || s->dst[c] == tier)) return 1;
    }
    return 0;
}

/* Release a copy; BAIL when the reference would report `busy`. */
static inline int release(const Sim *s, State *q, int32_t t, int tier) {
    int64_t key = (int64_t)t * s->T + tier;
    if (q->state[key] == ST_ARRIVING || in_use(s, q, t, tier)) return BAIL;
    q->state[key] = 0;
    q->usage[tier] -= s->nbytes[t];
    return OK;
}

static PyObject *simulate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *actions, *classes, *op_index, *tensor_index, *tier_index, *links;
    PyObject *op_dur, *op_ws, *op_rec, *reads, *writes, *upds, *dies, *nbytes, *init_tier, *final_req;
    PyObject *cap, *kind_names, *stream_names, *op_ids, *tensor_ids;
    int n_streams, C;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!O!O!iOOOOOOOOOOOiO!O!", &PyList_Type, &actions, &classes,
                          &PyDict_Type, &op_index, &PyTuple_Type, &op_ids, &PyDict_Type, &tensor_index,
                          &PyTuple_Type, &tensor_ids, &PyDict_Type, &tier_index,
                          &PyDict_Type, &links, &n_streams, &op_dur, &op_ws, &op_rec, &reads, &writes,
                          &upds, &dies, &nbytes, &init_tier, &final_req, &cap, &C, &PyTuple_Type,
                          &kind_names, &PyTuple_Type, &stream_names))
        return NULL;
    Sim s;
    memset(&s, 0, sizeof s);
    State q;
    memset(&q, 0, sizeof q);
    int64_t *init = NULL, *final = NULL;
    int64_t *pending = NULL, *succ_off = NULL;
    int32_t *succ = NULL;
    Event *heap = NULL;
    double *start = NULL, *end = NULL;
    int64_t *moved = NULL, *ncopies = NULL;
    PyObject *ids = NULL, *result = NULL;
    int rc = FAIL;

    s.n_ops = PyObject_Length(op_dur);
    s.n_tensors = PyObject_Length(nbytes);
    s.T = (int)PyObject_Length(cap);
    s.C = C;
    s.n_streams = n_streams;
    if (s.n_ops < 0 || s.n_tensors < 0 || s.T < 0) goto done;
    if (PyTuple_GET_SIZE(op_ids) != s.n_ops || PyTuple_GET_SIZE(tensor_ids) != s.n_tensors) {
        PyErr_SetString(PyExc_ValueError, "op_ids and tensor_ids must match op_dur and nbytes");
        goto done;
    }
    if (f64_from(op_dur, s.n_ops, &s.op_dur) < 0 || i64_from(op_ws, s.n_ops, &s.op_ws) < 0
        || i64_from(nbytes, s.n_tensors, &s.nbytes) < 0 || i64_from(init_tier, s.n_tensors, &init) < 0
        || i64_from(final_req, s.n_tensors, &final) < 0 || i64_from(cap, s.T, &s.cap) < 0
        || rows_from(reads, s.n_ops, &s.reads) < 0 || rows_from(writes, s.n_ops, &s.writes) < 0
        || rows_from(upds, s.n_ops, &s.upds) < 0 || rows_from(dies, s.n_ops, &s.dies) < 0) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); rc = BAIL; }
        goto done;
    }
    {
        int64_t *rec = NULL;
        if (i64_from(op_rec, s.n_ops, &rec) < 0) goto done;
        s.op_rec = malloc((size_t)s.n_ops + 1);
        if (!s.op_rec) { free(rec); PyErr_NoMemory(); goto done; }
        for (Py_ssize_t o = 0; o < s.n_ops; o++) s.op_rec[o] = rec[o] != 0;
        free(rec);
    }
    rc = compile_actions(&s, actions, classes, op_index, tensor_index, tier_index, links, op_ids, tensor_ids,
                         &ids);
    if (rc != OK) goto done;
    rc = FAIL;
    Py_ssize_t n = s.n;
    int T = s.T;
    /* successors and pending counts */
    pending = calloc((size_t)n + 1, sizeof(int64_t));
    succ_off = calloc((size_t)n + 2, sizeof(int64_t));
    succ = malloc(sizeof(int32_t) * ((size_t)s.pred_off[n] + 1));
    heap = malloc(sizeof(Event) * (2 * (size_t)n + 2));
    start = malloc(sizeof(double) * ((size_t)n + 1));
    end = malloc(sizeof(double) * ((size_t)n + 1));
    moved = calloc((size_t)n_streams + 1, sizeof(int64_t));
    ncopies = calloc((size_t)n_streams + 1, sizeof(int64_t));
    q.state = calloc((size_t)s.n_tensors * (size_t)(T > 0 ? T : 1) + 1, 1);
    q.alive = calloc((size_t)s.n_tensors + 1, 1);
    q.usage = calloc((size_t)T + 1, sizeof(int64_t));
    q.peak = calloc((size_t)T + 1, sizeof(int64_t));
    q.peak_time = calloc((size_t)T + 1, sizeof(double));
    q.inflight = malloc(sizeof(int32_t) * ((size_t)n_streams + 1));
    q.outs = malloc(sizeof(int32_t) * ((size_t)s.writes.off[s.n_ops] + 1));
    if (!q.outs || !pending || !succ_off || !succ || !heap || !start || !end || !moved || !ncopies || !q.state
        || !q.alive || !q.usage || !q.peak || !q.peak_time || !q.inflight) {
        PyErr_NoMemory();
        goto done;
    }
    for (int k = 0; k < n_streams; k++) q.inflight[k] = -1;
    q.running_op = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        pending[i] = s.pred_off[i + 1] - s.pred_off[i];
        for (int64_t k = s.pred_off[i]; k < s.pred_off[i + 1]; k++) succ_off[s.pred[k] + 1]++;
    }
    for (Py_ssize_t i = 0; i < n; i++) succ_off[i + 1] += succ_off[i];
    {
        int64_t *fill = calloc((size_t)n + 1, sizeof(int64_t));
        if (!fill) { PyErr_NoMemory(); goto done; }
        for (Py_ssize_t i = 0; i < n; i++)
            for (int64_t k = s.pred_off[i]; k < s.pred_off[i + 1]; k++) {
                int32_t j = s.pred[k];
                succ[succ_off[j] + fill[j]++] = (int32_t)i;
            }
        free(fill);
    }
    /* tensors present from time 0 */
    for (Py_ssize_t t = 0; t < s.n_tensors; t++) {
        if (init[t] >= 0) {
            q.state[t * T + init[t]] = ST_VALID;
            q.usage[init[t]] += s.nbytes[t];
            q.alive[t] = 1;
        }
    }
    Py_ssize_t hs = 0, started = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        start[i] = end[i] = -1.0;
        if (pending[i] == 0) {
            Event e = {0.0, s.kind[i] == K_FREE ? PH_FREE : PH_START, (int32_t)i};
            heap_push(heap, &hs, e);
        }
    }
    double now = 0.0;
    int dirty = 1;
    const int Cc = s.C;
#define CLOSE_INSTANT(tn)                                                  \
    for (int tier = 0; tier < T; tier++) {                                 \
        int64_t u = q.usage[tier];                                         \
        if (u > q.peak[tier]) { q.peak[tier] = u; q.peak_time[tier] = (tn); } \
        if (u > s.cap[tier]) { rc = BAIL; goto done; }                     \
    }
    while (hs > 0) {
        Event ev = heap_pop(heap, &hs);
        int32_t a = ev.seq;
        if (ev.time != now) {
            if (dirty) { CLOSE_INSTANT(now); dirty = 0; }
            now = ev.time;
        }
        int k = s.kind[a];
        if (ev.phase == PH_START) {
            start[a] = now;
            started++;
            Event e = {now + s.dur[a], PH_END, a};
            heap_push(heap, &hs, e);
            if (k == K_RUN || k == K_RECOMPUTE) {
                int32_t o = s.arg[a];
                if (k == K_RECOMPUTE && !s.op_rec[o]) { rc = BAIL; goto done; }
                for (int64_t r = s.reads.off[o]; r < s.reads.off[o + 1]; r++)
                    if (q.state[(int64_t)s.reads.val[r] * T + Cc] != ST_VALID) { rc = BAIL; goto done; }
                for (int64_t r = s.upds.off[o]; r < s.upds.off[o + 1]; r++) {
                    int32_t t = s.upds.val[r];
                    for (int st = 1; st < n_streams; st++) {
                        int32_t c = q.inflight[st];
                        if (c >= 0 && s.arg[c] == t) { rc = BAIL; goto done; }
                    }
                    for (int tier = 0; tier < T; tier++)
                        if (tier != Cc && q.state[(int64_t)t * T + tier])
                            if (release(&s, &q, t, tier) != OK) { rc = BAIL; goto done; }
                }
                int64_t n_outs = 0;
                for (int64_t r = s.writes.off[o]; r < s.writes.off[o + 1]; r++) {
                    int32_t t = s.writes.val[r];
                    int64_t key = (int64_t)t * T + Cc;
                    if (k == K_RECOMPUTE) {
                        if (q.alive[t] == 0) { rc = BAIL; goto done; }
                        if (q.alive[t] == 2 || q.state[key]) continue;
                    } else if (q.state[key]) {
                        continue;
                    }
                    q.alive[t] = 1;
                    q.state[key] = ST_ARRIVING;
                    q.usage[Cc] += s.nbytes[t];
                    q.outs[n_outs++] = t;
                }
                q.running_op = o;
                q.n_outs = n_outs;
                q.usage[Cc] += s.op_ws[o];
                dirty = 1;
            } else { /* copy */
                int32_t t = s.arg[a];
                int st = s.stream[a];
                ncopies[st]++;
                moved[st] += s.nbytes[t];
                q.inflight[st] = a;
                if (q.alive[t] != 1) { rc = BAIL; goto done; }
                int64_t skey = (int64_t)t * T + s.src[a], dkey = (int64_t)t * T + s.dst[a];
                if (q.state[skey] != ST_VALID) { rc = BAIL; goto done; }
                if (q.running_op >= 0 && contains(&s.upds, q.running_op, t)) { rc = BAIL; goto done; }
                if (q.state[dkey]) { rc = BAIL; goto done; }
                q.state[dkey] = ST_ARRIVING;
                q.usage[s.dst[a]] += s.nbytes[t];
                dirty = 1;
            }
            continue;
        }
        if (ev.phase == PH_FREE) {
            start[a] = now;
            started++;
            int32_t t = s.arg[a];
            if (q.alive[t] != 1) { rc = BAIL; goto done; }
            if (!q.state[(int64_t)t * T + s.dst[a]]) { rc = BAIL; goto done; }
            if (release(&s, &q, t, s.dst[a]) != OK) { rc = BAIL; goto done; }
        } else { /* end */
            if (k == K_RUN || k == K_RECOMPUTE) {
                int32_t o = s.arg[a];
                for (int64_t r = 0; r < q.n_outs; r++) {
                    int64_t key = (int64_t)q.outs[r] * T + Cc;
                    if (q.state[key] == ST_ARRIVING) q.state[key] = ST_VALID;
                }
                q.n_outs = 0;
                q.usage[Cc] -= s.op_ws[o];
                q.running_op = -1;
                if (k == K_RUN) {
                    for (int64_t r = s.dies.off[o]; r < s.dies.off[o + 1]; r++) {
                        int32_t t = s.dies.val[r];
                        for (int tier = 0; tier < T; tier++)
                            if (q.state[(int64_t)t * T + tier])
                                if (release(&s, &q, t, tier) != OK) { rc = BAIL; goto done; }
                        q.alive[t] = 2;
                    }
                }
            } else { /* copy */
                int32_t t = s.arg[a];
                q.inflight[s.stream[a]] = -1;
                int64_t skey = (int64_t)t * T + s.src[a], dkey = (int64_t)t * T + s.dst[a];
                if (q.state[dkey] == ST_ARRIVING) q.state[dkey] = ST_VALID;
                if (s.free_src[a] && q.alive[t] == 1) {
                    if (!q.state[skey]) { rc = BAIL; goto done; }
                    if (release(&s, &q, t, s.src[a]) != OK) { rc = BAIL; goto done; }
                }
            }
        }
        end[a] = now;
        for (int64_t r = succ_off[a]; r < succ_off[a + 1]; r++) {
            int32_t b = succ[r];
            if (--pending[b] == 0) {
                Event e = {now, s.kind[b] == K_FREE ? PH_FREE : PH_START, b};
                heap_push(heap, &hs, e);
            }
        }
    }
    if (dirty) { CLOSE_INSTANT(now); }
#undef CLOSE_INSTANT
    if (started < n) { rc = BAIL; goto done; }   /* deadlock */
    for (Py_ssize_t t = 0; t < s.n_tensors; t++) {  /* lost */
        if (final[t] >= 0) {
            if (q.state[t * T + final[t]] != ST_VALID) { rc = BAIL; goto done; }
        } else if (final[t] == -3) {
            rc = BAIL;   /* a final tier the hardware lacks: the reference words it */
            goto done;
        } else if (final[t] == -2) {
            int any = 0;
            for (int tier = 0; tier < T; tier++) any |= q.state[t * T + tier] == ST_VALID;
            if (!any) { rc = BAIL; goto done; }
        }
    }
    /* the report's figures */
    {
        double compute = 0.0, recompute = 0.0, makespan = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (s.kind[i] == K_RUN) compute += s.dur[i];
            else if (s.kind[i] == K_RECOMPUTE) recompute += s.dur[i];
            if (i == 0 || end[i] > makespan) makespan = end[i];
        }
        PyObject *kinds = PyList_New(n), *streams = PyList_New(n);
        PyObject *starts = PyList_New(n), *ends = PyList_New(n);
        PyObject *peak = PyList_New(T), *peak_time = PyList_New(T);
        PyObject *mv = PyList_New(n_streams), *cp = PyList_New(n_streams);
        PyObject *empty = PyUnicode_FromString("");
        if (!kinds || !streams || !starts || !ends || !peak || !peak_time || !mv || !cp || !empty) goto figs_fail;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *kn = PyTuple_GetItem(kind_names, s.kind[i]);
            PyObject *sn = s.stream[i] >= 0 ? PyTuple_GetItem(stream_names, s.stream[i]) : empty;
            if (!kn || !sn) goto figs_fail;
            Py_INCREF(kn);
            Py_INCREF(sn);
            PyList_SET_ITEM(kinds, i, kn);
            PyList_SET_ITEM(streams, i, sn);
            PyObject *fs = PyFloat_FromDouble(start[i]), *fe = PyFloat_FromDouble(end[i]);
            if (!fs || !fe) { Py_XDECREF(fs); Py_XDECREF(fe); goto figs_fail; }
            PyList_SET_ITEM(starts, i, fs);
            PyList_SET_ITEM(ends, i, fe);
        }
        for (int tier = 0; tier < T; tier++) {
            PyObject *pk = PyLong_FromLongLong(q.peak[tier]), *pt = PyFloat_FromDouble(q.peak_time[tier]);
            if (!pk || !pt) { Py_XDECREF(pk); Py_XDECREF(pt); goto figs_fail; }
            PyList_SET_ITEM(peak, tier, pk);
            PyList_SET_ITEM(peak_time, tier, pt);
        }
        for (int st = 0; st < n_streams; st++) {
            PyObject *m = PyLong_FromLongLong(moved[st]), *c = PyLong_FromLongLong(ncopies[st]);
            if (!m || !c) { Py_XDECREF(m); Py_XDECREF(c); goto figs_fail; }
            PyList_SET_ITEM(mv, st, m);
            PyList_SET_ITEM(cp, st, c);
        }
        Py_DECREF(empty);
        result = Py_BuildValue("(NNNNNNNNNddd)", ids, kinds, streams, starts, ends, peak, peak_time, mv, cp,
                               compute, recompute, makespan);
        ids = NULL;
        rc = result ? OK : FAIL;
        goto done;
    figs_fail:
        Py_XDECREF(kinds); Py_XDECREF(streams); Py_XDECREF(starts); Py_XDECREF(ends);
        Py_XDECREF(peak); Py_XDECREF(peak_time); Py_XDECREF(mv); Py_XDECREF(cp); Py_XDECREF(empty);
        rc = FAIL;
    }
done:
    sim_free(&s);
    free(init); free(final); free(pending); free(succ_off); free(succ); free(heap); free(start); free(end);
    free(moved); free(ncopies);
    free(q.state); free(q.alive); free(q.usage); free(q.peak); free(q.peak_time); free(q.inflight); free(q.outs);
    Py_XDECREF(ids);
    if (rc == BAIL) {
        Py_XDECREF(result);
        Py_RETURN_NONE;
    }
    if (rc == FAIL) {
        Py_XDECREF(result);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "native validator failed");
        return NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"simulate", simulate, METH_VARARGS,
     "Simulate a schedule that validates; None when it does not (run the reference for the errors)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "solver._simcore",
    "Native fast path of solver.timing (valid schedules only; see that module).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__simcore(void) { return PyModule_Create(&module); }
