/* Keyed pseudonyms (edge/report/pseudonym.py) in C: HMAC-SHA256 over two SHA-256
 * states prepared once (RFC 2104: the key block XOR ipad with the domain prefix
 * already fed in, and the key block XOR opad), as Pseudonymiser.hasher spells it out
 * over hashlib states. OpenSSL's SHA-256 (SHA-NI where the CPU has it) and no Python
 * object per step: about a fifth of the cost per value. Optional: built by
 * scripts/build_native.py when OpenSSL's headers are present (edge/native.py loads
 * it), else the Python hasher runs; tests compare both with the hmac module.
 *
 *   Keyed(key: bytes, domain_prefix: bytes, out_prefix: str, hex_chars: int)
 *   keyed(value: str) -> out_prefix + the first hex_chars hex digits of the HMAC
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: the states must be copied */
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define MAX_OUT 128

typedef struct {
    PyObject_HEAD
    SHA256_CTX inner, outer;
    char prefix[MAX_OUT];
    Py_ssize_t prefix_len, hex_chars;
} Keyed;

static const char HEX[] = "0123456789abcdef";

static PyObject *keyed_call(Keyed *k, PyObject *args, PyObject *kwargs)
{
    PyObject *value;
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs)) || PyTuple_GET_SIZE(args) != 1) {
        PyErr_SetString(PyExc_TypeError, "Keyed takes one str");
        return NULL;
    }
    value = PyTuple_GET_ITEM(args, 0);
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "Keyed takes one str");
        return NULL;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(value, &n); /* strict UTF-8, as str.encode */
    if (p == NULL)
        return NULL;
    SHA256_CTX c;
    unsigned char d[SHA256_DIGEST_LENGTH];
    char out[MAX_OUT + 2 * SHA256_DIGEST_LENGTH];
    memcpy(&c, &k->inner, sizeof c);
    SHA256_Update(&c, p, (size_t)n);
    SHA256_Final(d, &c);
    memcpy(&c, &k->outer, sizeof c);
    SHA256_Update(&c, d, sizeof d);
    SHA256_Final(d, &c);
    memcpy(out, k->prefix, (size_t)k->prefix_len);
    for (Py_ssize_t i = 0; i < k->hex_chars; i++) {
        unsigned char b = d[i / 2];
        out[k->prefix_len + i] = HEX[i % 2 ? b & 15 : b >> 4];
    }
    return PyUnicode_FromStringAndSize(out, k->prefix_len + k->hex_chars);
}

static int keyed_init(Keyed *k, PyObject *args, PyObject *kwargs)
{
    Py_buffer key, domain;
    const char *prefix;
    Py_ssize_t prefix_len, hex_chars;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "Keyed takes positional arguments only");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "y*y*s#n", &key, &domain, &prefix, &prefix_len, &hex_chars))
        return -1;
    int ok = prefix_len < MAX_OUT && hex_chars >= 0 && hex_chars <= 2 * SHA256_DIGEST_LENGTH;
    if (ok) {
        unsigned char block[SHA256_CBLOCK], pad[SHA256_CBLOCK];
        memset(block, 0, sizeof block);
        if (key.len > SHA256_CBLOCK) /* longer keys are hashed first */
            SHA256(key.buf, (size_t)key.len, block);
        else
            memcpy(block, key.buf, (size_t)key.len);
        for (int i = 0; i < SHA256_CBLOCK; i++)
            pad[i] = block[i] ^ 0x36;
        SHA256_Init(&k->inner);
        SHA256_Update(&k->inner, pad, sizeof pad);
        SHA256_Update(&k->inner, domain.buf, (size_t)domain.len);
        for (int i = 0; i < SHA256_CBLOCK; i++)
            pad[i] = block[i] ^ 0x5c;
        SHA256_Init(&k->outer);
        SHA256_Update(&k->outer, pad, sizeof pad);
        memcpy(k->prefix, prefix, (size_t)prefix_len);
        k->prefix_len = prefix_len;
        k->hex_chars = hex_chars;
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&domain);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "out_prefix too long or hex_chars not in 0..64");
        return -1;
    }
    return 0;
}

static PyTypeObject KeyedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "edge.report._keyed_sha256.Keyed",
    .tp_doc = "HMAC-SHA256 pseudonyms of str values under one key and domain prefix.",
    .tp_basicsize = sizeof(Keyed),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)keyed_init,
    .tp_call = (ternaryfunc)keyed_call,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_keyed_sha256",
    .m_doc = "Keyed pseudonyms (HMAC-SHA256) in C; see edge/report/pseudonym.py.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__keyed_sha256(void)
{
    if (PyType_Ready(&KeyedType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&KeyedType);
    if (PyModule_AddObject(m, "Keyed", (PyObject *)&KeyedType) < 0) {
        Py_DECREF(&KeyedType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
