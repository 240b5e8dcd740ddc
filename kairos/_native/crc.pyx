"""CRC-32 (zlib's: reflected polynomial 0xEDB88320) of many records of one buffer at once.

The block reader checks every chunk record's CRC before decoding it. Per record through
``zlib.crc32`` that is a Python call each (about a microsecond) at zlib's speed; here one call
checks them all. With PCLMULQDQ (chosen at run time) the bytes are folded 64 at a time by
carry-less multiplication (Gopal et al., "Fast CRC Computation for Generic Polynomials Using
PCLMULQDQ Instruction", Intel 2009), else and for the tails one table lookup per byte.

``zlib.crc32`` is the reference: ``tests/property/test_crc.py`` holds :func:`crc32` and
:func:`check_records` to it.
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>

    static uint32_t kairos_crc_table[256];

    static void kairos_crc_init(void) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            kairos_crc_table[n] = c;
        }
    }

    /* crc: the running register (not inverted) */
    static uint32_t kairos_crc_bytes(uint32_t crc, const uint8_t* p, size_t n) {
        while (n--)
            crc = kairos_crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    #if defined(__x86_64__) && defined(__GNUC__)
    #include <immintrin.h>
    #define KAIROS_HAVE_CLMUL_CODE 1

    /* n >= 64 and a multiple of 16; crc the running register */
    __attribute__((target("pclmul,sse4.1")))
    static uint32_t kairos_crc_fold(uint32_t crc, const uint8_t* p, size_t n) {
        /* x^(4*128+32), x^(4*128-32); x^(128+32), x^(128-32); x^64; P and mu, reflected */
        const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
        const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
        const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124LL);
        const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
        const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);
        __m128i a = _mm_loadu_si128((const __m128i*)(p + 0));
        __m128i b = _mm_loadu_si128((const __m128i*)(p + 16));
        __m128i c = _mm_loadu_si128((const __m128i*)(p + 32));
        __m128i d = _mm_loadu_si128((const __m128i*)(p + 48));
        __m128i t, u;
        a = _mm_xor_si128(a, _mm_cvtsi32_si128((int)crc));
        p += 64;
        n -= 64;
        while (n >= 64) {  /* four lanes, each folded 512 bits forward */
            t = _mm_clmulepi64_si128(a, k1k2, 0x00);
            a = _mm_clmulepi64_si128(a, k1k2, 0x11);
            a = _mm_xor_si128(_mm_xor_si128(a, t), _mm_loadu_si128((const __m128i*)(p + 0)));
            t = _mm_clmulepi64_si128(b, k1k2, 0x00);
            b = _mm_clmulepi64_si128(b, k1k2, 0x11);
            b = _mm_xor_si128(_mm_xor_si128(b, t), _mm_loadu_si128((const __m128i*)(p + 16)));
            t = _mm_clmulepi64_si128(c, k1k2, 0x00);
            c = _mm_clmulepi64_si128(c, k1k2, 0x11);
            c = _mm_xor_si128(_mm_xor_si128(c, t), _mm_loadu_si128((const __m128i*)(p + 32)));
            t = _mm_clmulepi64_si128(d, k1k2, 0x00);
            d = _mm_clmulepi64_si128(d, k1k2, 0x11);
            d = _mm_xor_si128(_mm_xor_si128(d, t), _mm_loadu_si128((const __m128i*)(p + 48)));
            p += 64;
            n -= 64;
        }
        /* the four lanes into one, 128 bits at a time */
        t = _mm_clmulepi64_si128(a, k3k4, 0x00);
        a = _mm_clmulepi64_si128(a, k3k4, 0x11);
        a = _mm_xor_si128(_mm_xor_si128(a, t), b);
        t = _mm_clmulepi64_si128(a, k3k4, 0x00);
        a = _mm_clmulepi64_si128(a, k3k4, 0x11);
        a = _mm_xor_si128(_mm_xor_si128(a, t), c);
        t = _mm_clmulepi64_si128(a, k3k4, 0x00);
        a = _mm_clmulepi64_si128(a, k3k4, 0x11);
        a = _mm_xor_si128(_mm_xor_si128(a, t), d);
        while (n >= 16) {
            t = _mm_clmulepi64_si128(a, k3k4, 0x00);
            a = _mm_clmulepi64_si128(a, k3k4, 0x11);
            a = _mm_xor_si128(_mm_xor_si128(a, t), _mm_loadu_si128((const __m128i*)p));
            p += 16;
            n -= 16;
        }
        /* 128 bits to 64, then Barrett reduction to 32 */
        t = _mm_clmulepi64_si128(a, k3k4, 0x10);
        a = _mm_xor_si128(_mm_srli_si128(a, 8), t);
        u = _mm_srli_si128(a, 4);
        a = _mm_clmulepi64_si128(_mm_and_si128(a, low32), k5, 0x00);
        a = _mm_xor_si128(a, u);
        t = _mm_clmulepi64_si128(_mm_and_si128(a, low32), poly, 0x10);
        t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
        a = _mm_xor_si128(a, t);
        return (uint32_t)_mm_extract_epi32(a, 1);
    }

    static int kairos_has_clmul(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    }
    #else
    #define KAIROS_HAVE_CLMUL_CODE 0
    static uint32_t kairos_crc_fold(uint32_t crc, const uint8_t* p, size_t n) {
        return kairos_crc_bytes(crc, p, n);
    }
    static int kairos_has_clmul(void) { return 0; }
    #endif

    static int kairos_use_clmul = 0;

    static uint32_t kairos_crc32(uint32_t crc, const uint8_t* p, size_t n) {
        size_t bulk;
        crc = ~crc;
        if (kairos_use_clmul && n >= 64) {
            bulk = n & ~(size_t)15;
            crc = kairos_crc_fold(crc, p, bulk);
            p += bulk;
            n -= bulk;
        }
        return ~kairos_crc_bytes(crc, p, n);
    }
    """
    void kairos_crc_init() nogil
    int kairos_has_clmul() nogil
    int kairos_use_clmul
    uint32_t kairos_crc32(uint32_t crc, const uint8_t* p, size_t n) nogil

kairos_crc_init()
HAS_CLMUL = bool(kairos_has_clmul())


def use_clmul(bint on):
    """Fold with PCLMULQDQ when ``on`` and the CPU has it (the default); off: bytes only.
    Returns whether folding is now used."""
    global kairos_use_clmul
    kairos_use_clmul = 1 if (on and HAS_CLMUL) else 0
    return bool(kairos_use_clmul)


use_clmul(True)


def crc32(const uint8_t[::1] data, uint32_t value=0):
    """``zlib.crc32(data, value)``."""
    cdef size_t n = data.shape[0]
    if n == 0:
        return value
    with nogil:
        value = kairos_crc32(value, &data[0], n)
    return value


def check_records(
    const uint8_t[::1] buf,
    const int64_t[::1] offsets,
    const int64_t[::1] lengths,
    const uint32_t[::1] crcs,
):
    """The position of the first record ``buf[offsets[i]:offsets[i] + lengths[i]]`` whose
    CRC-32 is not ``crcs[i]`` (or that does not lie inside ``buf``), else -1."""
    cdef Py_ssize_t i, n = offsets.shape[0], size = buf.shape[0], bad = -1
    cdef int64_t o, m
    if lengths.shape[0] != n or crcs.shape[0] != n:
        raise ValueError("offsets, lengths and crcs differ in length")
    with nogil:
        for i in range(n):
            o = offsets[i]
            m = lengths[i]
            if o < 0 or m < 0 or o > size or m > size - o:
                bad = i
                break
            if kairos_crc32(0, &buf[o] if m else NULL, <size_t>m) != crcs[i]:
                bad = i
                break
    return bad
