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
   the pure-Python path's.

   Where the time goes, per name (5,000 names, one core of the benchmark machine): finding it in
   the request ~5 ns (the bytes are classified 64 at a time, and a name's end is a bit scan),
   hashing it ~1.5 ns, looking it up ~6 ns, writing its entry of the reply ~8 ns; about twice that
   when other work has emptied the caches since the last call (benchmarks/names_bench.py). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if !defined(__SIZEOF_INT128__)
#error "the accelerator needs a 64-bit compiler with __int128 (WattWise then runs without it)"
#endif

#define MULTIPLIER 0x9e3779b97f4a7c15ULL

typedef struct {
    uint32_t tag;          /* the high half of the name's hash (the low half chose the slot) */
    uint32_t index;        /* of the name; EMPTY: a free slot */
    uint32_t offset;       /* of its bytes in the blob */
    uint32_t length;
} Slot;

#define EMPTY UINT32_MAX
/* How far ahead find() fetches table names (slots: twice as far) and join_sections entries. Between
   requests other work empties the caches; from memory, 8 ahead was too close (find: 137 us at
   5,000 names with caches emptied, against 96 us at 16; no change with caches warm). */
#define PREFETCH 16
#define PAD 64   /* readable bytes after every source of copy(): fixed-size moves */

typedef struct {
    uint64_t hash;
    uint32_t start;
    uint32_t length;
} Token;   /* a name of a request, while find() reads it */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;          /* names, in the caller's order */
    char *blob;            /* their UTF-8 bytes, one after the other */
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

static inline uint64_t load8(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t load4(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* The 128-bit product of a and b, its halves folded together: one multiply mixes every bit of
   both words into every bit of the result. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define K1 0xa0761d6478bd642fULL
#define K2 0xe7037ed1a0b428dbULL

/* A name's hash, reading only its own bytes (p[0:len]): 16 bytes per multiply, and the last one
   or two words loaded so that they end where the name does (overlapping what came before, so no
   byte past the name is read and no mask is needed). Collisions cost a comparison only: every
   match is exact. The seed is the table's own, random: names cannot be chosen to collide. */
static inline __attribute__((always_inline)) uint64_t hash_bytes(uint64_t seed, const unsigned char *p, Py_ssize_t len) {
    uint64_t a, b, h = seed ^ ((uint64_t)len * MULTIPLIER);
    if (len <= 16) {
        if (len >= 8) {
            a = load8(p);
            b = load8(p + len - 8);
        } else if (len >= 4) {
            a = load4(p);
            b = load4(p + len - 4);
        } else {
            a = len > 0 ? ((uint64_t)p[0] << 16) | ((uint64_t)p[len / 2] << 8) | p[len - 1] : 0;
            b = 0;
        }
    } else {
        const unsigned char *q = p;
        Py_ssize_t rest = len;
        for (; rest > 16; q += 16, rest -= 16) h = fold_mul(load8(q) ^ K1, load8(q + 8) ^ h);
        a = load8(p + len - 16);
        b = load8(p + len - 8);
    }
    return fold_mul(a ^ K2 ^ h, b ^ K1 ^ (h >> 7));
}

/* Whether a[0:len] and b[0:len] are the same bytes (len > 0), a word at a time, the last word
   ending where the names do. */
static inline __attribute__((always_inline)) int same(const unsigned char *a, const unsigned char *b, Py_ssize_t len) {
    if (len < 8) return memcmp(a, b, len) == 0;
    for (Py_ssize_t k = 0; k + 8 < len; k += 8)
        if (load8(a + k) != load8(b + k)) return 0;
    return load8(a + len - 8) == load8(b + len - 8);
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
static inline __attribute__((always_inline)) Py_ssize_t lookup_hashed(const NameTable *t, uint64_t h, const unsigned char *p, Py_ssize_t len) {
    for (size_t k = h & t->mask;; k = (k + 1) & t->mask) {
        const Slot *slot = &t->slot[k];
        if (slot->index == EMPTY) return -1;
        if (slot->tag == (uint32_t)(h >> 32) && slot->length == (uint64_t)len
            && same((const unsigned char *)t->blob + slot->offset, p, len))
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
    if (total >= (Py_ssize_t)UINT32_MAX) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "names too long in all");
        return -1;
    }
    size_t slots = 2;
    while (slots < (size_t)(2 * n)) slots <<= 1;
    self->n = n;
    self->seed = seed;
    self->mask = slots - 1;
    self->blob = PyMem_Malloc(total > 0 ? total : 1);
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
        uint64_t h = hash_bytes(seed, name, len);
        if (!ok || lookup_hashed(self, h, name, len) >= 0) continue;
        size_t k = h & self->mask;
        while (self->slot[k].index != EMPTY) k = (k + 1) & self->mask;
        self->slot[k] = (Slot){(uint32_t)(h >> 32), (uint32_t)i, (uint32_t)self->offset[i], (uint32_t)len};
    }
    Py_DECREF(seq);
    return 0;
}

/* Bit k set: byte q[k] is not PLAIN (q: 64 readable bytes). The portable loop, and SSE2's
   16 bytes per compare where the compiler targets it (every x86-64). */
static inline uint64_t stops_portable(const unsigned char *q) {
    uint64_t m = 0;
    for (int k = 0; k < 64; k++) m |= (uint64_t)!PLAIN[q[k]] << k;
    return m;
}

static inline uint64_t stops(const unsigned char *q) {
#if defined(__SSE2__)
    /* shifted by 0x5f, the plain range 0x21..0x7e is -128..-35 as signed bytes: one compare */
    const __m128i shift = _mm_set1_epi8(0x5f), last = _mm_set1_epi8(-34), quote = _mm_set1_epi8('"'),
                  backslash = _mm_set1_epi8('\\');
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(q + 16 * k));
        __m128i ok = _mm_cmplt_epi8(_mm_add_epi8(x, shift), last);
        ok = _mm_andnot_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), ok);
        m |= (uint64_t)(_mm_movemask_epi8(ok) ^ 0xffff) << (16 * k);
    }
    return m;
#else
    return stops_portable(q);
#endif
}

/* The places of the bytes of p[0:len] that are not PLAIN, in order, 64 bytes classified at a
   time. Finding a name's end is then a bit scan: no loop over its bytes, and the next name's
   place does not wait on loading this one's. */
typedef struct {
    const unsigned char *p;
    Py_ssize_t len;
    Py_ssize_t base;   /* the block of `bits`: p[base:base + 64] */
    uint64_t bits;     /* its stops not yet taken */
} Stops;

static inline void stops_load(Stops *r) {
    if (r->base + 64 <= r->len) {
        r->bits = stops(r->p + r->base);
    } else {   /* the last block: beyond len reads as stops (zero bytes), which next() cuts at len */
        unsigned char tail[64] = {0};
        memcpy(tail, r->p + r->base, r->len - r->base);
        r->bits = stops(tail);
    }
}

/* Takes the stops from `from` on (from <= len). */
static inline void stops_seek(Stops *r, Py_ssize_t from) {
    r->base = from & ~(Py_ssize_t)63;
    if (r->base >= r->len) {
        r->bits = 0;
        return;
    }
    stops_load(r);
    r->bits &= ~(uint64_t)0 << (from - r->base);
}

/* The next stop's place, or len when there is none. */
static inline Py_ssize_t stops_next(Stops *r) {
    while (r->bits == 0) {
        r->base += 64;
        if (r->base >= r->len) return r->len;
        stops_load(r);
    }
    Py_ssize_t at = r->base + __builtin_ctzll(r->bits);
    r->bits &= r->bits - 1;
    return at < r->len ? at : r->len;
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
    if (i >= len || p[i] != '"') goto miss;
    Stops stop = {p, len, 0, 0};
    stops_seek(&stop, i + 1);
    for (;;) {   /* p[i] is a name's opening quote, and the stops before i + 1 are taken */
        if (count >= self->n) goto miss;   /* more names than the table: a repeat */
        Py_ssize_t s = i + 1, e = stops_next(&stop);
        if (e >= len || p[e] != '"' || e == s) goto miss;   /* escape, control, non-ASCII, empty */
        token[count].start = s;
        token[count].length = e - s;
        token[count].hash = hash_bytes(self->seed, p + s, e - s);
        count++;
        if (e + 2 < len && p[e + 1] == ',' && p[e + 2] == '"') {   /* Go's compact form: "a","b" */
            i = stops_next(&stop);   /* a comma is plain: e + 2 is the next stop */
            continue;
        }
        i = skip_space(p, e + 1, len);
        if (i < len && p[i] == ',') {
            i = skip_space(p, i + 1, len);
            if (i >= len || p[i] != '"') goto miss;
            stops_seek(&stop, i + 1);
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
        Py_ssize_t j = lookup_hashed(self, t->hash, p + t->start, t->length);
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

/* Counts of labels, one add per node, then a list of n_labels ints. Few labels are counted in four
   interleaved stripes: most nodes share a label, and one counter would make each add wait for the
   last one's store. */
#define STRIPED 64
typedef struct {
    Py_ssize_t n_labels;
    Py_ssize_t *counts;              /* more than STRIPED labels */
    Py_ssize_t striped[4][STRIPED];
} Tally;

static int tally_init(Tally *t, Py_ssize_t n_labels) {
    t->n_labels = n_labels;
    memset(t->striped, 0, sizeof t->striped);
    t->counts = NULL;
    if (n_labels > STRIPED && (t->counts = PyMem_Calloc(n_labels, sizeof(Py_ssize_t))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The k-th add: label c, checked. */
static inline int tally_add(Tally *t, Py_ssize_t k, uint32_t c) {
    if ((Py_ssize_t)c >= t->n_labels) {
        PyErr_SetString(PyExc_ValueError, "labels: label not below n_labels");
        return -1;
    }
    if (t->counts == NULL) t->striped[k & 3][c]++;
    else t->counts[c]++;
    return 0;
}

/* The counts as a list (NULL: an exception); frees the tally either way. */
static PyObject *tally_list(Tally *t) {
    PyObject *result = PyList_New(t->n_labels);
    for (Py_ssize_t r = 0; result != NULL && r < t->n_labels; r++) {
        PyObject *v = PyLong_FromSsize_t(t->counts != NULL ? t->counts[r]
                                         : t->striped[0][r] + t->striped[1][r] + t->striped[2][r] + t->striped[3][r]);
        if (v == NULL) Py_CLEAR(result);
        else PyList_SET_ITEM(result, r, v);
    }
    PyMem_Free(t->counts);
    t->counts = NULL;
    return result;
}

/* join_sections(positions, records, entries, pieces, order, n_codes) -> (reply, counts)

   reply: pieces[0], the entries of the nodes at `positions` that are in section order[0] joined
   by commas, pieces[1], ... pieces[k] (k = len(order), at most MAX_ORDER): an
   ExtenderFilterResult or a HostPriorityList from its nodes' encoded entries, each section in
   request order. records[i], one per table name (native uint32s: start, length, code,
   section), says where node i's entry is in `entries` (which must end with PAD bytes that are no
   entry's), what it is counted under and which section it goes to. counts[c]: how many of the
   nodes at `positions` have code c (each below n_codes); the reply's tally, counted while
   writing it. One record per node, not one array per field: a node costs one cache line, not
   three, when its fields are read in request order. */
#define MAX_ORDER 3
typedef struct {
    uint32_t start, length, code, section;
} Record;

static PyObject *NameTable_join_sections(NameTable *self, PyObject *args) {
    Py_buffer pos, rec, ent;
    PyObject *pieces;
    const char *order;
    Py_ssize_t n_order, n_codes;
    if (!PyArg_ParseTuple(args, "y*y*y*O!y#n", &pos, &rec, &ent, &PyTuple_Type, &pieces, &order, &n_order, &n_codes))
        return NULL;
    PyObject *reply = NULL, *counted = NULL, *result = NULL;
    uint32_t *bucket = NULL;
    Tally tally = {0};
    const uint32_t *at;
    const Record *record = rec.buf;
    const char *entries = ent.buf;
    Py_ssize_t count, size = 0, limit = ent.len - PAD;
    if (positions_of(self, &pos, &at, &count) < 0) goto out;
    if (rec.len != self->n * (Py_ssize_t)sizeof(Record) || n_codes < 0) {
        PyErr_SetString(PyExc_ValueError, "records: one per table name (4 native uint32s each)");
        goto out;
    }
    if (n_order > MAX_ORDER || PyTuple_GET_SIZE(pieces) != n_order + 1) {
        PyErr_SetString(PyExc_ValueError, "order: at most 3 sections; pieces: one more than the sections in order");
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
    /* slot_of[section]: its place in `order`, or MAX_ORDER: not written */
    unsigned char slot_of[256];
    memset(slot_of, MAX_ORDER, sizeof slot_of);
    for (Py_ssize_t s = 0; s < n_order; s++) {
        if (slot_of[(unsigned char)order[s]] != MAX_ORDER) {
            PyErr_SetString(PyExc_ValueError, "order: each section once");
            goto out;
        }
        slot_of[(unsigned char)order[s]] = (unsigned char)s;
    }
    if (tally_init(&tally, n_codes) < 0) goto out;
    Py_ssize_t fills[MAX_ORDER + 1] = {0}, sized = 0;
    const uint32_t *sorted[MAX_ORDER] = {at};
    int one_run = n_order == 1;   /* a HostPriorityList: one section, usually every node's */
    for (Py_ssize_t k = 0; one_run && k < count; k++) {
        Record r = record[at[k]];
        if ((Py_ssize_t)r.start + r.length > limit) {
            PyErr_SetString(PyExc_ValueError, "records: an entry past the entries, or into their last PAD bytes");
            goto out;
        }
        if (tally_add(&tally, k, r.code) < 0) goto out;
        one_run = r.section == (unsigned char)order[0];
        sized += (Py_ssize_t)r.length + 1;   /* the entry and its comma */
    }
    if (one_run) {   /* the positions as they are: nothing to sort */
        fills[0] = count;
        size += sized;
    } else {
        if (tally.counts != NULL) memset(tally.counts, 0, n_codes * sizeof(Py_ssize_t));
        memset(tally.striped, 0, sizeof tally.striped);
        bucket = PyMem_Malloc((MAX_ORDER + 1) * (count > 0 ? count : 1) * sizeof(uint32_t));
        if (bucket == NULL) {
            PyErr_NoMemory();
            goto out;
        }
        /* One pass sorts the positions by section (bucket s holds section order[s]'s, in request
           order; bucket MAX_ORDER the rest) and sums the reply's size. The fills are kept in
           registers: one kept in memory makes each node wait for the last one's store. */
        Py_ssize_t f0 = 0, f1 = 0, f2 = 0, f3 = 0;
        for (Py_ssize_t k = 0; k < count; k++) {
            uint32_t i = at[k];
            Record r = record[i];
            if ((Py_ssize_t)r.start + r.length > limit) {
                PyErr_SetString(PyExc_ValueError, "records: an entry past the entries, or into their last PAD bytes");
                goto out;
            }
            if (tally_add(&tally, k, r.code) < 0) goto out;
            unsigned s = r.section < 256 ? slot_of[r.section] : MAX_ORDER;
            Py_ssize_t fill = s == 0 ? f0 : s == 1 ? f1 : s == 2 ? f2 : f3;
            bucket[s * count + fill] = i;
            f0 += s == 0;
            f1 += s == 1;
            f2 += s == 2;
            f3 += s == MAX_ORDER;
            size += s < MAX_ORDER ? (Py_ssize_t)r.length + 1 : 0;   /* the entry and its comma */
        }
        fills[0] = f0, fills[1] = f1, fills[2] = f2, fills[3] = f3;
        for (Py_ssize_t s = 0; s < MAX_ORDER; s++) sorted[s] = bucket + s * count;
    }
    for (Py_ssize_t s = 0; s < n_order; s++) size -= fills[s] > 0;   /* no comma after a section's last */
    reply = PyBytes_FromStringAndSize(NULL, size);
    if (reply == NULL) goto out;
    char *w = PyBytes_AS_STRING(reply), *end = w + size;
    for (Py_ssize_t s = 0; s <= n_order; s++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, s);
        w += put(w, PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece));
        if (s == n_order) break;
        const uint32_t *b = sorted[s];
        for (Py_ssize_t k = 0; k < fills[s]; k++) {
            const Record *r = &record[b[k]];
            if (k + PREFETCH < fills[s]) {   /* entries are read in request order: all over the buffer */
                const char *ahead = entries + record[b[k + PREFETCH]].start;
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead + 63);
            }
            if (k > 0) *w++ = ',';
            w = copy(w, entries + r->start, r->length, end);
        }
    }
    if (w != end) {   /* cannot happen: the size above is exact */
        PyErr_SetString(PyExc_SystemError, "join_sections: size mismatch");
        goto out;
    }
    counted = tally_list(&tally);
    if (counted != NULL) result = PyTuple_Pack(2, reply, counted);
out:
    PyMem_Free(tally.counts);
    Py_XDECREF(reply);
    Py_XDECREF(counted);
    PyMem_Free(bucket);
    PyBuffer_Release(&pos);
    PyBuffer_Release(&rec);
    PyBuffer_Release(&ent);
    return result;
}

/* score_entries(scores) -> (entries, records)

   Every table name's HostPriorityList entry, {"Host":"name","Score":n}, node i scoring scores[i]
   (one byte per table name), one after the other and then PAD zero bytes, and each one's record
   for join_sections (section 0, code 0). */
static PyObject *NameTable_score_entries(NameTable *self, PyObject *args) {
    enum { HOST = 9, SCORE = 10 };   /* the lengths of {"Host":" and ","Score": */
    static const char host[] = "{\"Host\":\"", score[] = "\",\"Score\":";
    Py_buffer sc;
    if (!PyArg_ParseTuple(args, "y*", &sc)) return NULL;
    PyObject *entries = NULL, *records = NULL, *result = NULL;
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
    records = PyBytes_FromStringAndSize(NULL, self->n * (Py_ssize_t)sizeof(Record));
    if (entries == NULL || records == NULL) goto out;
    char *w = PyBytes_AS_STRING(entries), *begin = w;
    Record *record = (Record *)PyBytes_AS_STRING(records);
    for (Py_ssize_t i = 0; i < self->n; i++) {
        unsigned char s = scores[i];
        char *start = w;
        w += put(w, host, HOST);
        w += put(w, self->blob + self->offset[i], name_len(self, i));
        w += put(w, score, SCORE);
        if (s >= 100) *w++ = (char)('0' + s / 100);
        if (s >= 10) *w++ = (char)('0' + (s / 10) % 10);
        *w++ = (char)('0' + s % 10);
        *w++ = '}';
        record[i] = (Record){(uint32_t)(start - begin), (uint32_t)(w - start), 0, 0};
    }
    memset(w, 0, PAD);
    if (w + PAD != begin + size) {   /* cannot happen: the size above is exact */
        PyErr_SetString(PyExc_SystemError, "score_entries: size mismatch");
        goto out;
    }
    result = PyTuple_Pack(2, entries, records);
out:
    Py_XDECREF(entries);
    Py_XDECREF(records);
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
    Py_ssize_t count;
    const uint32_t *at;
    if (positions_of(self, &pos, &at, &count) < 0) goto out;
    if (lab.len != self->n * (Py_ssize_t)sizeof(uint32_t) || n_labels < 0) {
        PyErr_SetString(PyExc_ValueError, "labels: one per table name");
        goto out;
    }
    const uint32_t *label = lab.buf;
    Tally tally;
    if (tally_init(&tally, n_labels) < 0) goto out;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (tally_add(&tally, k, label[at[k]]) < 0) {
            PyMem_Free(tally.counts);
            goto out;
        }
    }
    result = tally_list(&tally);
out:
    PyBuffer_Release(&pos);
    PyBuffer_Release(&lab);
    return result;
}

static PyObject *NameTable_len(NameTable *self, PyObject *Py_UNUSED(ignored)) { return PyLong_FromSsize_t(self->n); }

static PyMethodDef NameTable_methods[] = {
    {"find", (PyCFunction)NameTable_find, METH_VARARGS,
     "find(buffer, start) -> (positions, end) | None: the JSON array of names at buffer[start]."},
    {"join_sections", (PyCFunction)NameTable_join_sections, METH_VARARGS,
     "join_sections(positions, records, entries, pieces, order, n_codes) -> (reply, counts): a reply from encoded "
     "entries, and how many positions have each code."},
    {"score_entries", (PyCFunction)NameTable_score_entries, METH_VARARGS,
     "score_entries(scores) -> (entries, records): every name's HostPriorityList entry, for join_sections."},
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

/* _stops(block, portable) -> int: which bytes of a 64-byte block are not plain, as find() sees
   them (portable: the loop other targets compile; tests check that both agree). */
static PyObject *names_stops(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer block;
    int portable;
    if (!PyArg_ParseTuple(args, "y*p", &block, &portable)) return NULL;
    PyObject *result = NULL;
    if (block.len != 64) PyErr_SetString(PyExc_ValueError, "block: 64 bytes expected");
    else result = PyLong_FromUnsignedLongLong(portable ? stops_portable(block.buf) : stops(block.buf));
    PyBuffer_Release(&block);
    return result;
}

static PyMethodDef names_functions[] = {
    {"_stops", names_stops, METH_VARARGS, "_stops(block, portable) -> int: the non-plain bytes of a 64-byte block."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef names_module = {
    PyModuleDef_HEAD_INIT, "_names", "Names-mode requests and replies without an object per name.", -1, names_functions,
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
