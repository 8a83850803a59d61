/* Schemaless Avro values -> the buffers of Arrow arrays, in one pass over a batch.
 *
 * finkdl.fastdecode compiles a writer schema into a "program": its nodes in pre-order, each
 * (kind, union size, index of the null branch or -1, argument, number of children, skipped,
 * extra: an enum's symbols, a bounded int's or long's (low, high), a decimal's precision).
 * decode() walks every value of a batch through that program and returns
 * the batch as an Arrow struct array through the Arrow C data interface, in a PyCapsule that
 * pyarrow imports without copying: each node's buffers (validity bitmap, values or offsets,
 * data, map keys) are bytes objects the arrays keep alive (wrapping them one by one with
 * pyarrow.Array.from_buffers cost ~7 us per node, 0.7 ms per batch of alerts with cutouts).
 * A skipped node's values are read past, not stored, and once a node marked last is read the
 * rest of the value is not read at all: a program that skips all but one column reads that
 * column alone (a worker's labels). An enum is stored as its symbol's text. Any value that does
 * not decode to exactly its own last byte makes decode() return that value's index instead, and
 * the caller hands the batch to the fastavro reference decoder, which isolates it; so does a
 * value the reference would refuse or read otherwise (a date, time or decimal out of its range).
 * A value holds at most one array item or map entry per byte of it: items that take bytes cannot
 * go past that, and those that take none (nulls, empty records) are kept from holding a worker's
 * memory. read_past() reads whole values past, telling which go past that bound.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum Kind {  /* the numbers, K_INT to K_DOUBLE, follow one another */
    K_NULL, K_BOOL, K_INT, K_LONG, K_FLOAT, K_DOUBLE, K_STRING, K_BYTES, K_FIXED, K_ENUM,
    K_DECIMAL_BYTES, K_DECIMAL_FIXED, K_RECORD, K_ARRAY, K_MAP,
    K_BOUNDED_INT, K_BOUNDED_LONG  /* a logical type's: a date, a time, a timestamp */
};

/* A growing buffer that is a bytes object from the start, so that the result is handed to
 * Python as it is (shrunk to its length) rather than copied out (measured on alerts with
 * cutouts: 42 us per alert instead of 63-69). The decoder holds the GIL throughout. */
typedef struct {
    PyObject *obj;  /* bytes of size cap, or NULL before the first write */
    char *p;
    size_t len, cap;
} Buf;

enum { STORED, SKIPPED, LAST };

typedef struct Node {
    int kind, union_size, null_index;
    long long arg;  /* a fixed's size, an enum's number of symbols */
    int n_children, skip;  /* STORED, SKIPPED, or LAST: stored, then the value's end not read */
    PyObject *extra;  /* borrowed from the program: an enum's symbols, a tuple of bytes */
    long long low, high;  /* the values a bounded int or long may take */
    __int128 limit;  /* a decimal's unscaled value lies strictly between -limit and limit */
    struct Node **children;
    Py_ssize_t length;
    Buf valid, values, data, keys;  /* keys: a map's key offsets; data holds its key bytes */
} Node;

static int grow_slowly(Buf *b, size_t more) {
    size_t cap = b->cap ? b->cap : (more > 256 ? more : 256);
    while (cap < b->len + more) cap *= 2;
    if (cap > PY_SSIZE_T_MAX) return -1;
    if (b->obj == NULL)
        b->obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    else if (_PyBytes_Resize(&b->obj, (Py_ssize_t)cap) < 0)
        b->obj = NULL;  /* _PyBytes_Resize freed it */
    if (b->obj == NULL) { PyErr_Clear(); b->p = NULL; b->len = b->cap = 0; return -1; }
    b->p = PyBytes_AS_STRING(b->obj);
    b->cap = cap;
    return 0;
}

/* Called for every value: kept inline, so that a put of a constant width is a single move. */
static inline __attribute__((always_inline)) int grow(Buf *b, size_t more) {
    return b->len + more <= b->cap ? 0 : grow_slowly(b, more);
}

static inline __attribute__((always_inline)) int put(Buf *b, const void *src, size_t n) {
    if (n == 0) return 0;  /* an empty string's: b->p may still be NULL */
    if (grow(b, n)) return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

/* The batch being decoded: its number of values and their bytes. */
static size_t batch_values, batch_bytes;

/* A string's or bytes' content. A column's first one sizes its buffer for the whole batch
 * (at most the batch's bytes): growing by doubling up to it copied every cutout about once
 * more (measured on alerts with cutouts: 14.2 us per alert decoded, 10.7 without). */
static int put_data(Buf *b, const void *src, size_t n) {
    if (b->cap == 0 && n > 0) {
        size_t guess = n * batch_values;
        if (guess / batch_values != n || guess > batch_bytes) guess = batch_bytes;
        if (grow(b, guess)) return -1;
    }
    return put(b, src, n);
}

static int put_zeros(Buf *b, size_t n) {
    if (grow(b, n)) return -1;
    memset(b->p + b->len, 0, n);
    b->len += n;
    return 0;
}

static int put_offset(Buf *b, size_t offset) {
    if (offset > INT32_MAX) return -1;
    int32_t v = (int32_t)offset;
    return put(b, &v, 4);
}

/* Bit i of a bitmap whose bytes are zeroed as it grows. */
static inline __attribute__((always_inline)) int put_bit(Buf *b, Py_ssize_t i, int set) {
    size_t need = (size_t)(i >> 3) + 1;
    if (need > b->len && put_zeros(b, need - b->len)) return -1;
    if (set) b->p[i >> 3] |= (char)(1 << (i & 7));
    return 0;
}

static int read_long(const uint8_t **pp, const uint8_t *end, int64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
        if (p >= end || shift > 63) return -1;
        uint8_t byte = *p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) break;
        shift += 7;
    }
    *pp = p;
    *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    return 0;
}

/* Strict UTF-8, as Python decodes it: no overlong forms, surrogates or code points past U+10FFFF. */
static int valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + k >= n) return 0;  /* its k continuation bytes run past the end */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

static int append_null(Node *n);

static int value_width(const Node *n) {
    switch (n->kind) {
    case K_INT: case K_FLOAT: case K_BOUNDED_INT: return 4;
    case K_LONG: case K_DOUBLE: case K_BOUNDED_LONG: return 8;
    case K_FIXED: return (int)n->arg;
    case K_DECIMAL_BYTES: case K_DECIMAL_FIXED: return 16;
    default: return 0;
    }
}

/* A null slot: every child of a record gets one too, so children stay as long as their parent. */
static int append_null(Node *n) {
    if (n->skip == SKIPPED) return 0;
    if (put_bit(&n->valid, n->length, 0)) return -1;
    int width = value_width(n);
    if (width && put_zeros(&n->values, (size_t)width)) return -1;
    switch (n->kind) {
    case K_BOOL:
        if (put_bit(&n->values, n->length, 0)) return -1;
        break;
    case K_STRING: case K_BYTES: case K_ENUM:
        if (put_offset(&n->values, n->data.len)) return -1;
        break;
    case K_ARRAY: case K_MAP:
        if (put_offset(&n->values, (size_t)n->children[0]->length)) return -1;
        break;
    case K_RECORD:
        for (int i = 0; i < n->n_children; i++)
            if (append_null(n->children[i])) return -1;
        break;
    }
    n->length++;
    return 0;
}

/* Big-endian two's complement of up to 16 bytes -> a little-endian 128-bit integer, within the
 * decimal's precision (the reference refuses one beyond it: Arrow cannot hold it). */
static int put_decimal(Node *n, const uint8_t *s, size_t len) {
    if (len > 16) return -1;
    __int128 v = len && (s[0] & 0x80) ? -1 : 0;
    for (size_t i = 0; i < len; i++) v = (__int128)(((unsigned __int128)v << 8) | s[i]);
    if (v >= n->limit || v <= -n->limit) return -1;
    uint8_t out[16];
    for (int i = 0; i < 16; i++) out[i] = (uint8_t)((unsigned __int128)v >> (8 * i));
    return put(&n->values, out, 16);
}

static inline int decode(Node *n, const uint8_t **pp, const uint8_t *end);

static int read_bytes(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *len) {
    int64_t size;
    if (read_long(pp, end, &size) || size < 0 || size > end - *pp) return -1;
    *s = *pp;
    *len = (size_t)size;
    *pp += size;
    return 0;
}

#define MAX_CHECKED_KEYS 512

/* True when map keys [first, last) repeat one: fastavro keeps the last value, Arrow would keep
 * both. Maps of alerts hold a handful of keys; past MAX_CHECKED_KEYS the reference decides. */
static int repeats_key(const Node *n, size_t first, size_t last) {
    if (last - first > MAX_CHECKED_KEYS) return 1;
    const int32_t *offsets = (const int32_t *)n->keys.p;
    for (size_t i = first; i < last; i++)
        for (size_t j = i + 1; j < last; j++) {
            int32_t len = offsets[i + 1] - offsets[i];
            if (offsets[j + 1] - offsets[j] == len &&
                (len == 0 || memcmp(n->data.p + offsets[i], n->data.p + offsets[j], (size_t)len) == 0))
                return 1;
        }
    return 0;
}

/* The items the value being read may still hold, from its length down (one per byte), and
 * whether it went past them. */
static int64_t items_left;
static int too_many;

/* The head of the next block of an array's items or a map's entries: its count (0 ends them).
 * A negative count is followed by the block's size in bytes, which is read and not trusted:
 * like the reference, the items themselves are read (a size that lies cannot make the label
 * read alone differ from the whole value's). */
static int read_block(const uint8_t **pp, const uint8_t *end, int64_t *count) {
    int64_t size;
    if (read_long(pp, end, count)) return -1;
    if (*count < 0 && (*count == INT64_MIN || read_long(pp, end, &size))) return -1;
    if (*count < 0) *count = -*count;
    if (*count > items_left) {
        too_many = 1;
        return -1;
    }
    items_left -= *count;
    return 0;
}

/* Items of an array or entries of a map: blocks of a count (negative: followed by a byte size). */
static int decode_blocks(Node *n, const uint8_t **pp, const uint8_t *end) {
    Node *child = n->children[0];
    size_t first_key = (size_t)child->length;
    for (;;) {
        int64_t count;
        if (read_block(pp, end, &count)) return -1;
        if (count == 0) break;
        for (int64_t i = 0; i < count; i++) {
            if (n->kind == K_MAP) {
                const uint8_t *key;
                size_t len;
                if (read_bytes(pp, end, &key, &len) || !valid_utf8(key, len)) return -1;
                if (put_data(&n->data, key, len) || put_offset(&n->keys, n->data.len)) return -1;
            }
            if (decode(child, pp, end)) return -1;
        }
    }
    if (n->kind == K_MAP && repeats_key(n, first_key, (size_t)child->length)) return -1;
    return put_offset(&n->values, (size_t)child->length);
}

/* A number (K_INT to K_DOUBLE), the commonest value (light curves: ~400 per alert): decode()
 * stores it without a call to decode_value (measured: a light curve in 4.1 us instead of 5.0). */
static inline __attribute__((always_inline)) int decode_number(Node *n, const uint8_t **pp,
                                                               const uint8_t *end) {
    int64_t v;
    switch (n->kind) {
    case K_INT: {
        if (read_long(pp, end, &v) || v < INT32_MIN || v > INT32_MAX) return -1;
        int32_t i = (int32_t)v;
        return put(&n->values, &i, 4);
    }
    case K_LONG:
        return read_long(pp, end, &v) || put(&n->values, &v, 8) ? -1 : 0;
    case K_FLOAT:
        if (end - *pp < 4 || put(&n->values, *pp, 4)) return -1;
        *pp += 4;
        return 0;
    case K_DOUBLE:
        if (end - *pp < 8 || put(&n->values, *pp, 8)) return -1;
        *pp += 8;
        return 0;
    default:
        return -1;
    }
}

static int decode_value(Node *n, const uint8_t **pp, const uint8_t *end) {
    const uint8_t *s;
    size_t len;
    int64_t v;
    if (put_bit(&n->valid, n->length, 1)) return -1;
    switch (n->kind) {
    case K_NULL:
        break;
    case K_BOOL:
        if (*pp >= end || **pp > 1) return -1;
        if (put_bit(&n->values, n->length, **pp)) return -1;
        (*pp)++;
        break;
    case K_INT: case K_LONG: case K_FLOAT: case K_DOUBLE:
        if (decode_number(n, pp, end)) return -1;
        break;
    case K_STRING: case K_BYTES:
        if (read_bytes(pp, end, &s, &len)) return -1;
        if (n->kind == K_STRING && !valid_utf8(s, len)) return -1;
        if (put_data(&n->data, s, len) || put_offset(&n->values, n->data.len)) return -1;
        break;
    case K_FIXED: case K_DECIMAL_FIXED:
        len = (size_t)n->arg;
        if ((size_t)(end - *pp) < len) return -1;
        if (n->kind == K_FIXED ? put(&n->values, *pp, len) : put_decimal(n, *pp, len)) return -1;
        *pp += len;
        break;
    case K_BOUNDED_INT: case K_BOUNDED_LONG: {
        if (read_long(pp, end, &v) || v < n->low || v > n->high) return -1;
        int32_t i = (int32_t)v;  /* a bounded int's bounds are within int32 */
        if (n->kind == K_BOUNDED_INT ? put(&n->values, &i, 4) : put(&n->values, &v, 8)) return -1;
        break;
    }
    case K_ENUM: {
        if (read_long(pp, end, &v) || v < 0 || v >= n->arg) return -1;
        PyObject *symbol = PyTuple_GET_ITEM(n->extra, (Py_ssize_t)v);
        if (put_data(&n->data, PyBytes_AS_STRING(symbol), (size_t)PyBytes_GET_SIZE(symbol)) ||
            put_offset(&n->values, n->data.len)) return -1;
        break;
    }
    case K_DECIMAL_BYTES:
        if (read_bytes(pp, end, &s, &len) || put_decimal(n, s, len)) return -1;
        break;
    case K_RECORD:
        for (int i = 0; i < n->n_children; i++)
            if (decode(n->children[i], pp, end)) return -1;
        break;
    case K_ARRAY: case K_MAP:
        if (decode_blocks(n, pp, end)) return -1;
        break;
    default:
        return -1;
    }
    n->length++;
    return 0;
}

static inline int skip(Node *n, const uint8_t **pp, const uint8_t *end);

/* skip() for values other than numbers, which it reads past itself. */
static int skip_value(Node *n, const uint8_t **pp, const uint8_t *end) {
    const uint8_t *s;
    size_t len;
    switch (n->kind) {
    case K_NULL:
        return 0;
    case K_BOOL:
        if (*pp >= end) return -1;
        (*pp)++;
        return 0;
    case K_FIXED: case K_DECIMAL_FIXED:
        len = (size_t)n->arg;
        if ((size_t)(end - *pp) < len) return -1;
        *pp += len;
        return 0;
    case K_STRING: case K_BYTES: case K_DECIMAL_BYTES:
        return read_bytes(pp, end, &s, &len);
    case K_RECORD:
        for (int i = 0; i < n->n_children; i++)
            if (skip(n->children[i], pp, end)) return -1;
        return 0;
    case K_ARRAY: case K_MAP:
        for (;;) {
            int64_t count;
            if (read_block(pp, end, &count)) return -1;
            if (count == 0) return 0;
            for (int64_t i = 0; i < count; i++) {
                if (n->kind == K_MAP && read_bytes(pp, end, &s, &len)) return -1;
                if (skip(n->children[0], pp, end)) return -1;
            }
        }
    default:
        return -1;
    }
}

/* A union's branch, where the node is one: 1 when the value is null, 0 when it follows, -1 for
 * a branch the union does not have. A branch below 64 is one byte (zigzag 2k): read inline. */
static inline __attribute__((always_inline)) int null_branch(const Node *n, const uint8_t **pp,
                                                             const uint8_t *end) {
    int64_t branch;
    if (!n->union_size) return 0;
    if (*pp < end && **pp < 0x80) {
        branch = (**pp & 1) ? -1 : **pp >> 1;
        (*pp)++;
    } else if (read_long(pp, end, &branch)) {
        return -1;
    }
    if (branch < 0 || branch >= n->union_size) return -1;
    return branch == n->null_index;
}

/* Read past a value of a skipped node and its union branch, checking only what keeps the
 * reading in bounds, as the whole decode reads it: the whole decode at release checks the rest.
 * The commonest values, the numbers of records' fields (light curves: ~400 per alert, read past
 * for the label), are read past inline, a varint without its value. */
static inline __attribute__((always_inline)) int skip(Node *n, const uint8_t **pp,
                                                      const uint8_t *end) {
    int null = null_branch(n, pp, end);
    if (null) return null < 0 ? -1 : 0;
    const uint8_t *p = *pp, *last = p;
    switch (n->kind) {
    case K_FLOAT:
        if (end - p < 4) return -1;
        *pp = p + 4;
        return 0;
    case K_DOUBLE:
        if (end - p < 8) return -1;
        *pp = p + 8;
        return 0;
    case K_INT: case K_LONG: case K_ENUM: case K_BOUNDED_INT: case K_BOUNDED_LONG:
        /* at most 10 bytes, as read_long reads */
        while (last < end && (*last & 0x80) && last - p < 9) last++;
        if (last >= end || (*last & 0x80)) return -1;
        *pp = last + 1;
        return 0;
    default:
        return skip_value(n, pp, end);
    }
}

/* Set once the node marked last has been read: the rest of the value is not read. */
static int stopped;

static inline __attribute__((always_inline)) int decode(Node *n, const uint8_t **pp,
                                                        const uint8_t *end) {
    if (n->skip == SKIPPED) return stopped ? 0 : skip(n, pp, end);
    int null = null_branch(n, pp, end);
    if (null < 0) return -1;
    int failed;
    if (null) {
        failed = append_null(n);
    } else if (n->kind >= K_INT && n->kind <= K_DOUBLE) {  /* as decode_value would, inline */
        failed = put_bit(&n->valid, n->length, 1) || decode_number(n, pp, end);
        n->length += !failed;
    } else {
        failed = decode_value(n, pp, end);
    }
    if (n->skip == LAST) stopped = 1;
    return failed;
}

static void free_nodes(Node *nodes, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++) {
        free(nodes[i].children);
        Py_XDECREF(nodes[i].valid.obj);
        Py_XDECREF(nodes[i].values.obj);
        Py_XDECREF(nodes[i].data.obj);
        Py_XDECREF(nodes[i].keys.obj);
    }
    free(nodes);
}

/* Link the pre-order nodes into a tree; returns the index after node i's subtree, or -1. */
static Py_ssize_t link_tree(Node *nodes, Py_ssize_t count, Py_ssize_t i) {
    if (i >= count) return -1;
    Node *n = &nodes[i];
    Py_ssize_t next = i + 1;
    if (n->n_children) {
        n->children = calloc((size_t)n->n_children, sizeof(Node *));
        if (!n->children) return -1;
    }
    for (int c = 0; c < n->n_children; c++) {
        n->children[c] = &nodes[next];
        next = link_tree(nodes, count, next);
        if (next < 0) return -1;
    }
    return next;
}

/* Whether a node's kind, children, argument and extra are such as the decoder expects; the
 * extra's bounds or precision are read into the node. */
static int well_formed(Node *n) {
    int leaf = n->n_children == 0;
    switch (n->kind) {
    case K_RECORD:
        return n->n_children >= 0;
    case K_ARRAY: case K_MAP:
        return n->n_children == 1;
    case K_FIXED: case K_DECIMAL_FIXED:
        if (!leaf || n->arg < 0 || n->arg > (n->kind == K_FIXED ? INT32_MAX : 16)) return 0;
        if (n->kind == K_FIXED) return 1;
        /* fall through: a decimal's precision */
    case K_DECIMAL_BYTES: {
        long precision = n->extra && PyLong_Check(n->extra) ? PyLong_AsLong(n->extra) : 0;
        if (!leaf || precision < 1 || precision > 38) return 0;
        n->limit = 1;
        while (precision--) n->limit *= 10;
        return 1;
    }
    case K_BOUNDED_INT: case K_BOUNDED_LONG:
        if (!leaf || !n->extra || !PyTuple_Check(n->extra) ||
            !PyArg_ParseTuple(n->extra, "LL", &n->low, &n->high)) return 0;
        return n->kind == K_BOUNDED_LONG || (n->low >= INT32_MIN && n->high <= INT32_MAX);
    case K_ENUM:
        if (!leaf || !n->extra || !PyTuple_Check(n->extra) || PyTuple_GET_SIZE(n->extra) != n->arg)
            return 0;
        for (Py_ssize_t k = 0; k < n->arg; k++)
            if (!PyBytes_Check(PyTuple_GET_ITEM(n->extra, k))) return 0;
        return 1;
    default:
        return leaf && n->kind >= K_NULL && n->kind <= K_BYTES;
    }
}

static Node *parse_program(PyObject *program, Py_ssize_t *count) {
    PyObject *seq = PySequence_Fast(program, "the program must be a sequence");
    if (!seq) return NULL;
    *count = PySequence_Fast_GET_SIZE(seq);
    Node *nodes = calloc((size_t)(*count ? *count : 1), sizeof(Node));
    if (!nodes) { Py_DECREF(seq); PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t i = 0; i < *count; i++) {
        Node *n = &nodes[i];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "iiiLi|iO;a program node is (kind, union size, "
                              "null index, argument, children[, skipped[, extra]])",
                              &n->kind, &n->union_size, &n->null_index, &n->arg, &n->n_children,
                              &n->skip, &n->extra)) {
            Py_DECREF(seq);
            free_nodes(nodes, *count);
            return NULL;
        }
    }
    Py_DECREF(seq);
    for (Py_ssize_t i = 0; i < *count; i++) {
        if (!well_formed(&nodes[i])) {
            free_nodes(nodes, *count);
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "program node %zd is not one the decoder reads (an enum "
                         "needs its symbols as bytes, a bounded number (low, high), a decimal its "
                         "precision)", i);
            return NULL;
        }
    }
    if (*count == 0 || link_tree(nodes, *count, 0) != *count) {
        free_nodes(nodes, *count);
        PyErr_SetString(PyExc_ValueError, "the program's nodes do not form one tree");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *count; i++) {  /* offsets start at 0 */
        int k = nodes[i].kind;
        if ((k == K_STRING || k == K_BYTES || k == K_ENUM || k == K_ARRAY || k == K_MAP) &&
            put_offset(&nodes[i].values, 0))
            goto nomem;
        if (k == K_MAP && put_offset(&nodes[i].keys, 0)) goto nomem;
    }
    return nodes;
nomem:
    free_nodes(nodes, *count);
    PyErr_NoMemory();
    return NULL;
}

/* The buffer's bytes, shrunk to its length; the buffer gives them up. */
static PyObject *as_bytes(Buf *b) {
    PyObject *obj = b->obj;
    b->obj = NULL;
    b->p = NULL;
    if (obj == NULL) return PyBytes_FromStringAndSize("", 0);
    if (_PyBytes_Resize(&obj, (Py_ssize_t)b->len) < 0) return NULL;
    return obj;
}

/* The Arrow C data interface (https://arrow.apache.org/docs/format/CDataInterface.html). */
struct ArrowArray {
    int64_t length, null_count, offset, n_buffers, n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

/* What one exported array owns: the bytes objects its buffers point into, and its children. */
typedef struct {
    PyObject *owned[3];
    const void *buffers[3];
    struct ArrowArray **children;
    int64_t n_children;
} Owned;

/* Called by Arrow, from any thread, once nothing uses the array's buffers any more. */
static void release_array(struct ArrowArray *a) {
    if (a->release == NULL) return;
    Owned *o = a->private_data;
    for (int64_t i = 0; i < o->n_children; i++) {
        struct ArrowArray *child = o->children[i];
        if (child && child->release) child->release(child);
        free(child);
    }
    free(o->children);
    PyGILState_STATE gil = PyGILState_Ensure();
    for (int i = 0; i < 3; i++) Py_XDECREF(o->owned[i]);
    PyGILState_Release(gil);
    free(o);
    a->release = NULL;
}

static void free_array(struct ArrowArray *a) {
    if (a == NULL) return;
    if (a->release) a->release(a);
    free(a);
}

static struct ArrowArray *new_array(int64_t length, int64_t null_count, int64_t n_buffers,
                                    int64_t n_children) {
    struct ArrowArray *a = calloc(1, sizeof *a);
    Owned *o = calloc(1, sizeof *o);
    struct ArrowArray **children = n_children ? calloc((size_t)n_children, sizeof *children) : NULL;
    if (!a || !o || (n_children && !children)) {
        free(a); free(o); free(children);
        PyErr_NoMemory();
        return NULL;
    }
    o->children = children;
    o->n_children = n_children;
    *a = (struct ArrowArray){length, null_count, 0, n_buffers, n_children, o->buffers, children,
                             NULL, release_array, o};
    return a;
}

/* Buffer i of an array: the bytes of a node's buffer, which the node gives up. */
static int own(struct ArrowArray *a, int i, Buf *b) {
    Owned *o = a->private_data;
    PyObject *obj = as_bytes(b);
    if (obj == NULL) return -1;
    o->owned[i] = obj;
    o->buffers[i] = PyBytes_AS_STRING(obj);
    return 0;
}

/* A node's values as an Arrow array of the type Python gives at import (null count unknown). */
static struct ArrowArray *export(Node *n) {
    struct ArrowArray *a = NULL;
    int64_t kept = 0, k = 0;
    switch (n->kind) {
    case K_NULL:
        return new_array(n->length, n->length, 0, 0);
    case K_RECORD:
        for (int i = 0; i < n->n_children; i++) kept += n->children[i]->skip != SKIPPED;
        if (!(a = new_array(n->length, -1, 1, kept)) || own(a, 0, &n->valid)) break;
        for (int i = 0; i < n->n_children; i++)
            if (n->children[i]->skip != SKIPPED && !(a->children[k++] = export(n->children[i])))
                goto fail;
        return a;
    case K_ARRAY:
        if (!(a = new_array(n->length, -1, 2, 1)) || own(a, 0, &n->valid) || own(a, 1, &n->values)) break;
        if (!(a->children[0] = export(n->children[0]))) break;
        return a;
    case K_MAP: {  /* a list of struct<key: string, value> */
        Node *items = n->children[0];
        struct ArrowArray *entries, *keys;
        if (!(a = new_array(n->length, -1, 2, 1)) || own(a, 0, &n->valid) || own(a, 1, &n->values)) break;
        if (!(entries = a->children[0] = new_array(items->length, 0, 1, 2))) break;
        if (!(keys = entries->children[0] = new_array(items->length, 0, 3, 0)) ||
            own(keys, 1, &n->keys) || own(keys, 2, &n->data)) break;
        if (!(entries->children[1] = export(items))) break;
        return a;
    }
    case K_STRING: case K_BYTES: case K_ENUM:
        if (!(a = new_array(n->length, -1, 3, 0)) || own(a, 0, &n->valid) || own(a, 1, &n->values) ||
            own(a, 2, &n->data)) break;
        return a;
    default:
        if (!(a = new_array(n->length, -1, 2, 0)) || own(a, 0, &n->valid) || own(a, 1, &n->values)) break;
        return a;
    }
fail:
    free_array(a);
    return NULL;
}

static void free_capsule(PyObject *capsule) {
    free_array(PyCapsule_GetPointer(capsule, "arrow_array"));
}

/* What reading one value gives. */
enum { READ, TOO_MANY_ITEMS, UNREADABLE };

/* One value through the program from its root: READ when it reads to exactly its last byte (or
 * as far as the node marked last). */
static int read_value(Node *root, const char *s, Py_ssize_t len) {
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    stopped = too_many = 0;
    items_left = len;
    if (decode_value(root, &p, end) || (p != end && !stopped))
        return too_many ? TOO_MANY_ITEMS : UNREADABLE;
    return READ;
}

/* The program's nodes and the batch's values (a sequence of bytes), for reading; NULL on error. */
static Node *open_batch(PyObject *args, Py_ssize_t *count, PyObject **seq) {
    PyObject *program, *values;
    if (!PyArg_ParseTuple(args, "OO", &program, &values)) return NULL;
    Node *nodes = parse_program(program, count);
    if (!nodes) return NULL;
    *seq = PySequence_Fast(values, "values must be a sequence of bytes");
    if (!*seq) { free_nodes(nodes, *count); return NULL; }
    Py_ssize_t n_values = PySequence_Fast_GET_SIZE(*seq);
    batch_values = n_values ? (size_t)n_values : 1;
    batch_bytes = 0;
    for (Py_ssize_t i = 0; i < n_values; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(*seq, i);
        if (PyBytes_Check(v)) batch_bytes += (size_t)PyBytes_GET_SIZE(v);
    }
    return nodes;
}

static PyObject *decode_batch(PyObject *self, PyObject *args) {
    Py_ssize_t count;
    PyObject *seq;
    Node *nodes = open_batch(args, &count, &seq);
    if (!nodes) return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        char *s;
        Py_ssize_t len;
        int failed = PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &s, &len) < 0;
        if (failed || read_value(&nodes[0], s, len) != READ) {
            Py_DECREF(seq);
            free_nodes(nodes, count);
            return failed ? NULL : PyLong_FromSsize_t(i);
        }
    }
    Py_DECREF(seq);
    struct ArrowArray *batch = export(&nodes[0]);
    free_nodes(nodes, count);
    if (batch == NULL) return NULL;
    batch->null_count = 0;  /* a record batch: its rows are never null */
    batch->buffers[0] = NULL;
    PyObject *capsule = PyCapsule_New(batch, "arrow_array", free_capsule);
    if (capsule == NULL) free_array(batch);
    return capsule;
}

static PyObject *read_past(PyObject *self, PyObject *args) {
    Py_ssize_t count;
    PyObject *seq;
    Node *nodes = open_batch(args, &count, &seq);
    if (!nodes) return NULL;
    PyObject *out = PyList_New(PySequence_Fast_GET_SIZE(seq));
    for (Py_ssize_t i = 0; out && i < PySequence_Fast_GET_SIZE(seq); i++) {
        char *s;
        Py_ssize_t len;
        PyObject *status = NULL;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(seq, i), &s, &len) == 0)
            status = PyLong_FromLong(read_value(&nodes[0], s, len));
        if (status == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, status);
    }
    Py_DECREF(seq);
    free_nodes(nodes, count);
    return out;
}

static PyMethodDef methods[] = {
    {"decode", decode_batch, METH_VARARGS,
     "decode(program, values) -> the batch as an Arrow struct array (a PyCapsule of the C data "
     "interface), or the index of the first value that does not decode to exactly its length."},
    {"read_past", read_past, METH_VARARGS,
     "read_past(program, values) -> for each value, 0 when it reads through the program to exactly "
     "its last byte, 1 when it holds more array items and map entries than bytes, 2 when it does "
     "not read; nothing is kept."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_avro", NULL, -1, methods};

PyMODINIT_FUNC PyInit__avro(void) { return PyModule_Create(&module); }
