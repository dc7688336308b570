/* Names-mode requests and replies in C: the optional accelerator of scheduler/fragments.py.

   With nodeCacheCapable: true kube-scheduler sends up to thousands of node names per call. In
   Python every name becomes an object, is hashed and looked up (~80 ns each: 0.4 ms at 5,000
   names, more than the HTTP round trip of the same bytes). This module reads the JSON array of
   names straight from the request bytes into positions in a fixed table of node names, and
   writes replies from the nodes' encoded entries at those positions: no object per name.

   find() takes the plain case only and returns None for the rest, which the pure-Python path then
   answers: a name with an escape, a control or non-ASCII byte, a name the table does not hold, a
   name given twice, anything that is not an array of strings. So the accelerator can make a
   reply faster, never different: tests/scheduler/test_name_scan.py checks that find() reads what
   a JSON decoder reads or declines, tests/scheduler/test_fragments.py that the replies parse to
   the pure-Python path's. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MULTIPLIER 0x9e3779b97f4a7c15ULL

typedef struct {
    uint32_t tag;          /* the high half of the name's hash (the low half chose the slot) */
    uint32_t index;        /* of the name; EMPTY: a free slot */
    uint32_t offset;       /* of its bytes in the blob */
    uint32_t length;
} Slot;

#define EMPTY UINT32_MAX
#define PREFETCH 8
#define PAD 64   /* readable bytes after every source of copy(): fixed-size moves */

typedef struct {
    uint64_t hash;
    uint32_t start;
    uint32_t length;
} Token;   /* a name of a request, while find() reads it */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;          /* names, in the caller's order */
    char *blob;            /* their UTF-8 bytes, one after the other, then PAD zero bytes */
    Py_ssize_t *offset;    /* name i is blob[offset[i]:offset[i + 1]] */
    Slot *slot;            /* open addressing, linear probing; at most half full */
    size_t mask;           /* slots - 1 (a power of two) */
    unsigned char *seen;   /* seen[i]: find() has met name i in this call */
    Token *tokens;         /* find()'s scratch: room for n names (the GIL keeps calls apart) */
    uint64_t seed;
} NameTable;

/* PLAIN[c]: byte c may be in a plain node name: printable ASCII other than space, quote and
   backslash (Kubernetes node names are DNS subdomains: far fewer). Filled by the module's init. */
static unsigned char PLAIN[256];

static inline int json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The last 1..8 bytes of a name as a word, zero-padded. `whole`: 8 bytes may be read from p (one
   load, masked) rather than only `len` (a call to memcpy: a third of the cost of a look-up). */
static inline __attribute__((always_inline)) uint64_t tail_word(const unsigned char *p, Py_ssize_t len, int whole) {
    uint64_t w = 0;
    if (whole) {
        memcpy(&w, p, 8);
        return len >= 8 ? w : w & ((1ULL << (8 * len)) - 1);
    }
    memcpy(&w, p, len);
    return w;
}

/* A name's hash, eight bytes at a time. Collisions cost a comparison only: every match is exact.
   `whole`: the name's last word may be read in full (see tail_word). */
static inline __attribute__((always_inline)) uint64_t hash_bytes(uint64_t seed, const unsigned char *p, Py_ssize_t len, int whole) {
    uint64_t h = seed ^ ((uint64_t)len * MULTIPLIER), w;
    for (; len > 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * MULTIPLIER;
        h ^= h >> 29;
    }
    h = (h ^ tail_word(p, len, whole)) * MULTIPLIER;
    h ^= h >> 32;
    return h;
}

/* Whether name bytes a (from the blob: its padding makes whole words safe) equal b[0:len]. */
static inline __attribute__((always_inline)) int same(const unsigned char *a, const unsigned char *b, Py_ssize_t len, int whole) {
    uint64_t x, y;
    for (; len > 8; a += 8, b += 8, len -= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    return tail_word(a, len, 1) == tail_word(b, len, whole);
}

static void NameTable_dealloc(NameTable *self) {
    PyMem_Free(self->blob);
    PyMem_Free(self->offset);
    PyMem_Free(self->slot);
    PyMem_Free(self->seen);
    PyMem_Free(self->tokens);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline Py_ssize_t name_len(const NameTable *t, Py_ssize_t i) { return t->offset[i + 1] - t->offset[i]; }

/* The table index of name p[0:len] whose hash is h, or -1. */
static inline __attribute__((always_inline)) Py_ssize_t lookup_hashed(const NameTable *t, uint64_t h, const unsigned char *p, Py_ssize_t len,
                                       int whole) {
    for (size_t k = h & t->mask;; k = (k + 1) & t->mask) {
        const Slot *slot = &t->slot[k];
        if (slot->index == EMPTY) return -1;
        if (slot->tag == (uint32_t)(h >> 32) && slot->length == (uint64_t)len
            && same((const unsigned char *)t->blob + slot->offset, p, len, whole))
            return slot->index;
    }
}

static int NameTable_init(NameTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"names", "seed", NULL};
    PyObject *names;
    unsigned long long seed = 0xcbf29ce484222325ULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|K", kwlist, &names, &seed)) return -1;
    if (self->blob != NULL) {
        PyErr_SetString(PyExc_TypeError, "NameTable is initialised once");
        return -1;
    }
    PyObject *seq = PySequence_Fast(names, "names must be a sequence of str");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n >= (Py_ssize_t)EMPTY / 4) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many names");
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        if (!PyUnicode_Check(items[i]) || PyUnicode_AsUTF8AndSize(items[i], &len) == NULL) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "names must be str");
            return -1;
        }
        total += len;
    }
    if (total >= (Py_ssize_t)UINT32_MAX - PAD) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "names too long in all");
        return -1;
    }
    size_t slots = 2;
    while (slots < (size_t)(2 * n)) slots <<= 1;
    self->n = n;
    self->seed = seed;
    self->mask = slots - 1;
    self->blob = PyMem_Calloc(total + PAD, 1);
    self->offset = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t));
    self->slot = PyMem_Malloc(slots * sizeof(Slot));
    self->seen = PyMem_Calloc(n > 0 ? n : 1, 1);
    self->tokens = PyMem_Malloc((n > 0 ? n : 1) * sizeof(Token));
    if (!self->blob || !self->offset || !self->slot || !self->seen || !self->tokens) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t k = 0; k < slots; k++) self->slot[k].index = EMPTY;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(items[i], &len);
        memcpy(self->blob + at, s, len);
        self->offset[i] = at;
        self->offset[i + 1] = at + len;
        at += len;
        int ok = len > 0;
        for (Py_ssize_t k = 0; k < len && ok; k++) ok = PLAIN[(unsigned char)s[k]];
        /* A name that is not plain can never match a plain token: it stays out of the table
           (requests naming it take the Python path). A repeated name keeps its first index. */
        const unsigned char *name = (const unsigned char *)self->blob + self->offset[i];
        uint64_t h = hash_bytes(seed, name, len, 1);
        if (!ok || lookup_hashed(self, h, name, len, 1) >= 0) continue;
        size_t k = h & self->mask;
        while (self->slot[k].index != EMPTY) k = (k + 1) & self->mask;
        self->slot[k] = (Slot){(uint32_t)(h >> 32), (uint32_t)i, (uint32_t)self->offset[i], (uint32_t)len};
    }
    Py_DECREF(seq);
    return 0;
}


static Py_ssize_t skip_space(const unsigned char *p, Py_ssize_t i, Py_ssize_t len) {
    while (i < len && json_space(p[i])) i++;
    return i;
}

/* find(buffer, start) -> (positions, end) | None

   Reads the JSON array that starts at buffer[start] (after optional whitespace). Returns the
   table indices of its names in order, as native uint32 bytes, and the offset just past its ']';
   None unless it is an array of plain, distinct names that the table holds. */
static PyObject *NameTable_find(NameTable *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*n", &view, &start)) return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t len = view.len, i = start, count = 0;
    uint32_t *out = NULL;
    PyObject *result = NULL;
    if (start < 0 || start > len || len > (Py_ssize_t)UINT32_MAX) goto miss;   /* Token holds 32-bit offsets */
    i = skip_space(p, i, len);
    if (i >= len || p[i] != '[') goto miss;
    i = skip_space(p, i + 1, len);
    out = PyMem_Malloc((self->n > 0 ? self->n : 1) * sizeof(uint32_t));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    if (i < len && p[i] == ']') {
        i++;
        goto done;
    }
    /* First every name's place and hash, then the look-ups, each slot fetched a few names ahead:
       independent loads overlap instead of waiting on the scanning loop's branches. */
    Token *token = self->tokens;
    for (;;) {
        if (i >= len || p[i] != '"' || count >= self->n) goto miss;   /* more names than the table: a repeat */
        Py_ssize_t s = ++i;
        while (i < len && PLAIN[p[i]]) i++;
        if (i >= len || p[i] != '"' || i == s) goto miss;   /* escape, control, non-ASCII, empty */
        Py_ssize_t n = i - s;
        token[count].start = s;
        token[count].length = n;
        /* one call or the other, each with `whole` a constant: a variable one was half the time */
        token[count].hash = s + n + 8 <= len ? hash_bytes(self->seed, p + s, n, 1) : hash_bytes(self->seed, p + s, n, 0);
        count++;
        i = skip_space(p, i + 1, len);
        if (i < len && p[i] == ',') {
            i = skip_space(p, i + 1, len);
            continue;
        }
        if (i < len && p[i] == ']') {
            i++;
            break;
        }
        goto miss;
    }
    memset(self->seen, 0, self->n);
    for (Py_ssize_t k = 0; k < count; k++) {
        if (k + 2 * PREFETCH < count) __builtin_prefetch(&self->slot[token[k + 2 * PREFETCH].hash & self->mask]);
        if (k + PREFETCH < count) {   /* its slot is in cache by now: fetch the name it points to */
            const Slot *ahead = &self->slot[token[k + PREFETCH].hash & self->mask];
            if (ahead->index != EMPTY) __builtin_prefetch(self->blob + ahead->offset);
        }
        const Token *t = &token[k];
        Py_ssize_t j = t->start + t->length + 8 <= len ? lookup_hashed(self, t->hash, p + t->start, t->length, 1)
                                                        : lookup_hashed(self, t->hash, p + t->start, t->length, 0);
        if (j < 0 || self->seen[j]) goto miss;   /* unknown, or named twice */
        self->seen[j] = 1;
        out[k] = (uint32_t)j;
    }
done:
    result = Py_BuildValue("(y#n)", (const char *)out, count * (Py_ssize_t)sizeof(uint32_t), i);
    PyMem_Free(out);
    PyBuffer_Release(&view);
    return result;
miss:
    PyMem_Free(out);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* Checked views of the per-call arrays of the writers. */
static int positions_of(NameTable *self, Py_buffer *pos, const uint32_t **at, Py_ssize_t *count) {
    if (pos->len % sizeof(uint32_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "positions: native uint32 bytes expected");
        return -1;
    }
    *at = pos->buf;
    *count = pos->len / (Py_ssize_t)sizeof(uint32_t);
    for (Py_ssize_t k = 0; k < *count; k++) {
        if ((Py_ssize_t)(*at)[k] >= self->n) {
            PyErr_SetString(PyExc_ValueError, "positions: index out of the table");
            return -1;
        }
    }
    return 0;
}

static Py_ssize_t put(char *w, const void *src, Py_ssize_t len) {
    memcpy(w, src, len);
    return len;
}

/* Copies src[0:len] to w, which has room up to `end`, in fixed-size moves while they fit (a call
   to memcpy per entry was half the cost of a reply). src must have PAD readable bytes after len;
   what is written past w + len is overwritten by what comes next. */
static inline char *copy(char *w, const char *src, Py_ssize_t len, const char *end) {
    if (w + len + PAD > end) return w + put(w, src, len);
    memcpy(w, src, 64);   /* most entries: one fixed-size move, no loop to mispredict */
    for (Py_ssize_t k = 64; k < len; k += 16) memcpy(w + k, src + k, 16);
    return w + len;
}

/* join_sections(positions, sections, entries, bounds, pieces, order) -> bytes

   pieces[0], the entries of the nodes at `positions` that are in section order[0] joined by
   commas, pieces[1], ... pieces[k]: an ExtenderFilterResult from its nodes' encoded entries.
   Node i is in section sections[i] (one byte per table name) and its entry is
   entries[bounds[i]:bounds[i + 1]] (bounds: native uint32, one more than the table's names);
   entries must end with PAD bytes that are no entry's. */
static PyObject *NameTable_join_sections(NameTable *self, PyObject *args) {
    Py_buffer pos, sec, ent, bnd;
    PyObject *pieces;
    const char *order;
    Py_ssize_t n_order;
    if (!PyArg_ParseTuple(args, "y*y*y*y*O!y#", &pos, &sec, &ent, &bnd, &PyTuple_Type, &pieces, &order, &n_order))
        return NULL;
    PyObject *reply = NULL;
    uint32_t *bucket = NULL;
    const uint32_t *at, *bound = bnd.buf;
    Py_ssize_t count;
    const unsigned char *section = sec.buf;
    const char *entries = ent.buf;
    int in_order[256] = {0};
    Py_ssize_t size = 0, per_section[256] = {0};
    if (positions_of(self, &pos, &at, &count) < 0) goto out;
    if (sec.len != self->n || bnd.len != (self->n + 1) * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "sections: one per table name; bounds: one more");
        goto out;
    }
    if (PyTuple_GET_SIZE(pieces) != n_order + 1) {
        PyErr_SetString(PyExc_ValueError, "pieces: one more than the sections in order");
        goto out;
    }
    for (Py_ssize_t k = 0; k <= n_order; k++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, k);
        if (!PyBytes_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "pieces: bytes expected");
            goto out;
        }
        size += PyBytes_GET_SIZE(piece);
    }
    for (Py_ssize_t s = 0; s < n_order; s++) {
        if (in_order[(unsigned char)order[s]]++) {
            PyErr_SetString(PyExc_ValueError, "order: each section once");
            goto out;
        }
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        uint32_t i = at[k];
        if (bound[i] > bound[i + 1] || (Py_ssize_t)bound[i + 1] > ent.len - PAD) {
            PyErr_SetString(PyExc_ValueError, "bounds: out of order, or into the entries' last PAD bytes");
            goto out;
        }
        if (!in_order[section[i]]) continue;
        size += bound[i + 1] - bound[i];
        per_section[section[i]]++;
    }
    for (int s = 0; s < 256; s++)
        if (per_section[s] > 1) size += per_section[s] - 1;   /* commas */
    /* the positions of each section in order, one after the other (a counting sort): then each
       section is written in one straight run */
    Py_ssize_t start[256], fill[256], total = 0;
    for (Py_ssize_t s = 0; s < n_order; s++) {
        start[s] = fill[s] = total;
        total += per_section[(unsigned char)order[s]];
    }
    bucket = PyMem_Malloc((total > 0 ? total : 1) * sizeof(uint32_t));
    if (bucket == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    int slot_of[256];
    for (int s = 0; s < 256; s++) slot_of[s] = -1;
    for (Py_ssize_t s = 0; s < n_order; s++) slot_of[(unsigned char)order[s]] = (int)s;
    for (Py_ssize_t k = 0; k < count; k++) {
        int s = slot_of[section[at[k]]];
        if (s >= 0) bucket[fill[s]++] = at[k];
    }
    reply = PyBytes_FromStringAndSize(NULL, size);
    if (reply == NULL) goto out;
    char *w = PyBytes_AS_STRING(reply), *end = w + size;
    for (Py_ssize_t s = 0; s <= n_order; s++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, s);
        w += put(w, PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece));
        if (s == n_order) break;
        for (Py_ssize_t k = start[s]; k < fill[s]; k++) {
            uint32_t i = bucket[k];
            if (k + PREFETCH < fill[s]) {   /* entries are read in request order: all over the buffer */
                const char *ahead = entries + bound[bucket[k + PREFETCH]];
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead + 63);
            }
            if (k > start[s]) *w++ = ',';
            w = copy(w, entries + bound[i], bound[i + 1] - bound[i], end);
        }
    }
    if (w != end) {   /* cannot happen: the size above is exact */
        Py_CLEAR(reply);
        PyErr_SetString(PyExc_SystemError, "join_sections: size mismatch");
    }
out:
    PyMem_Free(bucket);
    PyBuffer_Release(&pos);
    PyBuffer_Release(&sec);
    PyBuffer_Release(&ent);
    PyBuffer_Release(&bnd);
    return reply;
}

/* score_entries(scores) -> (entries, bounds)

   Every table name's HostPriorityList entry, {"Host":"name","Score":n}, node i scoring scores[i]
   (one byte per table name), one after the other and then PAD zero bytes, and where each starts
   (native uint32, one more than the names): what join_sections writes a prioritize reply from. */
static PyObject *NameTable_score_entries(NameTable *self, PyObject *args) {
    enum { HOST = 9, SCORE = 10 };   /* the lengths of {"Host":" and ","Score": */
    static const char host[] = "{\"Host\":\"", score[] = "\",\"Score\":";
    Py_buffer sc;
    if (!PyArg_ParseTuple(args, "y*", &sc)) return NULL;
    PyObject *entries = NULL, *bounds = NULL, *result = NULL;
    const unsigned char *scores = sc.buf;
    if (sc.len != self->n) {
        PyErr_SetString(PyExc_ValueError, "scores: one per table name");
        goto out;
    }
    Py_ssize_t size = PAD;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        unsigned char s = scores[i];
        size += HOST + name_len(self, i) + SCORE + (s >= 100 ? 3 : s >= 10 ? 2 : 1) + 1;
    }
    if (size > (Py_ssize_t)UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "entries too long in all");
        goto out;
    }
    entries = PyBytes_FromStringAndSize(NULL, size);
    bounds = PyBytes_FromStringAndSize(NULL, (self->n + 1) * (Py_ssize_t)sizeof(uint32_t));
    if (entries == NULL || bounds == NULL) goto out;
    char *w = PyBytes_AS_STRING(entries), *begin = w;
    uint32_t *bound = (uint32_t *)PyBytes_AS_STRING(bounds);
    for (Py_ssize_t i = 0; i < self->n; i++) {
        unsigned char s = scores[i];
        bound[i] = (uint32_t)(w - begin);
        w += put(w, host, HOST);
        w += put(w, self->blob + self->offset[i], name_len(self, i));
        w += put(w, score, SCORE);
        if (s >= 100) *w++ = (char)('0' + s / 100);
        if (s >= 10) *w++ = (char)('0' + (s / 10) % 10);
        *w++ = (char)('0' + s % 10);
        *w++ = '}';
    }
    bound[self->n] = (uint32_t)(w - begin);
    memset(w, 0, PAD);
    if (w + PAD != begin + size) {   /* cannot happen: the size above is exact */
        PyErr_SetString(PyExc_SystemError, "score_entries: size mismatch");
        goto out;
    }
    result = PyTuple_Pack(2, entries, bounds);
out:
    Py_XDECREF(entries);
    Py_XDECREF(bounds);
    PyBuffer_Release(&sc);
    return result;
}

/* count(positions, labels, n_labels) -> list: how many of the positions have each label
   (labels: native uint32 per table name, each below n_labels). */
static PyObject *NameTable_count(NameTable *self, PyObject *args) {
    Py_buffer pos, lab;
    Py_ssize_t n_labels;
    if (!PyArg_ParseTuple(args, "y*y*n", &pos, &lab, &n_labels)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t *counts = NULL, count;
    const uint32_t *at, *label = lab.buf;
    if (positions_of(self, &pos, &at, &count) < 0) goto out;
    if (lab.len != self->n * (Py_ssize_t)sizeof(uint32_t) || n_labels < 0) {
        PyErr_SetString(PyExc_ValueError, "labels: one per table name");
        goto out;
    }
    counts = PyMem_Calloc(n_labels > 0 ? n_labels : 1, sizeof(Py_ssize_t));
    if (counts == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        if ((Py_ssize_t)label[at[k]] >= n_labels) {
            PyErr_SetString(PyExc_ValueError, "labels: label not below n_labels");
            goto out;
        }
        counts[label[at[k]]]++;
    }
    result = PyList_New(n_labels);
    for (Py_ssize_t r = 0; result != NULL && r < n_labels; r++) {
        PyObject *c = PyLong_FromSsize_t(counts[r]);
        if (c == NULL) Py_CLEAR(result);
        else PyList_SET_ITEM(result, r, c);
    }
out:
    PyMem_Free(counts);
    PyBuffer_Release(&pos);
    PyBuffer_Release(&lab);
    return result;
}

static PyObject *NameTable_len(NameTable *self, PyObject *Py_UNUSED(ignored)) { return PyLong_FromSsize_t(self->n); }

static PyMethodDef NameTable_methods[] = {
    {"find", (PyCFunction)NameTable_find, METH_VARARGS,
     "find(buffer, start) -> (positions, end) | None: the JSON array of names at buffer[start]."},
    {"join_sections", (PyCFunction)NameTable_join_sections, METH_VARARGS,
     "join_sections(positions, sections, entries, bounds, pieces, order) -> bytes: a reply from encoded entries."},
    {"score_entries", (PyCFunction)NameTable_score_entries, METH_VARARGS,
     "score_entries(scores) -> (entries, bounds): every name's HostPriorityList entry, for join_sections."},
    {"count", (PyCFunction)NameTable_count, METH_VARARGS,
     "count(positions, labels, n_labels) -> list: how many positions have each label."},
    {"size", (PyCFunction)NameTable_len, METH_NOARGS, "How many names the table was made with."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject NameTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wattwise.scheduler._names.NameTable",
    .tp_doc = "NameTable(names, seed=...): node names in a fixed order, found in request bytes.",
    .tp_basicsize = sizeof(NameTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)NameTable_init,
    .tp_dealloc = (destructor)NameTable_dealloc,
    .tp_methods = NameTable_methods,
};

static struct PyModuleDef names_module = {
    PyModuleDef_HEAD_INIT, "_names", "Names-mode requests and replies without an object per name.", -1, NULL,
};

PyMODINIT_FUNC PyInit__names(void) {
    for (int c = 0x21; c < 0x7f; c++) PLAIN[c] = c != '"' && c != '\\';
    if (PyType_Ready(&NameTableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&names_module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "PAD", PAD) < 0) {   /* what entry buffers must end with */
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&NameTableType);
    if (PyModule_AddObject(m, "NameTable", (PyObject *)&NameTableType) < 0) {
        Py_DECREF(&NameTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
