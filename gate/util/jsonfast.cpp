/*
 * jsonfast: simdjson's document turned into cJSON's tree. See jsonfast.h.
 *
 * The one C++ file of the gate: simdjson is a C++ library. Built without exceptions or RTTI;
 * simdjson's calls are the ones that return an error code.
 */
#include "gate/util/jsonfast.h"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <emmintrin.h>

#include <simdjson.h>

using simdjson::dom::element;
using simdjson::dom::element_type;

namespace {

/* Capacity is grown in powers of two from this, so that a conversation growing by a turn per
 * request does not make the parser allocate again at every request. */
constexpr size_t FIRST_CAPACITY = 16 << 10;

/* Each thread's parser (its buffers are reused from one parse to the next). */
thread_local simdjson::dom::parser parser(JSONFAST_MAX);
thread_local unsigned long fallbacks;

/* REFUSED: what cJSON refuses (too deep), or simdjson failing to read its own document */
enum built { BUILT, NO_MEMORY, REFUSED };

cJSON *new_item()
{
    cJSON *c = static_cast<cJSON *>(cJSON_malloc(sizeof(cJSON)));

    if (c != nullptr)
        std::memset(c, 0, sizeof(*c));
    return c;
}

char *copy(std::string_view v)
{
    char *p = static_cast<char *>(cJSON_malloc(v.size() + 1));

    if (p != nullptr) {
        std::memcpy(p, v.data(), v.size());
        p[v.size()] = '\0';
    }
    return p;
}

/* cJSON's valueint: the number, saturated to int. */
int saturate(double d)
{
    if (d >= INT_MAX)
        return INT_MAX;
    if (d <= static_cast<double>(INT_MIN))
        return INT_MIN;
    return static_cast<int>(d);
}

built fill(element e, cJSON *c, unsigned depth);

/* Appends a new item to parent's list of items, whose last is *last. */
cJSON *append(cJSON *parent, cJSON **last)
{
    cJSON *c = new_item();

    if (c == nullptr)
        return nullptr;
    if (*last == nullptr) {
        parent->child = c;
    } else {
        (*last)->next = c;
        c->prev = *last;
    }
    *last = c;
    parent->child->prev = c; /* cJSON's lists: the first item's prev is the last */
    return c;
}

/*
 * Makes c the item of e, as cJSON's parse_value would; depth is how many arrays and objects
 * enclose it. The items made are linked into c as they are made, so that cJSON_Delete of the
 * root frees them all when this fails part-way.
 */
built fill(element e, cJSON *c, unsigned depth)
{
    cJSON *last = nullptr, *item;
    simdjson::dom::array a;
    simdjson::dom::object o;
    std::string_view sv;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    bool t = false;
    double d = 0;

    switch (e.type()) {
    case element_type::ARRAY:
        if (depth >= CJSON_NESTING_LIMIT)
            return REFUSED;
        if (e.get(a) != simdjson::SUCCESS)
            return REFUSED;
        c->type = cJSON_Array;
        for (element v : a) {
            built b;
            if ((item = append(c, &last)) == nullptr)
                return NO_MEMORY;
            if ((b = fill(v, item, depth + 1)) != BUILT)
                return b;
        }
        return BUILT;
    case element_type::OBJECT:
        if (depth >= CJSON_NESTING_LIMIT)
            return REFUSED;
        if (e.get(o) != simdjson::SUCCESS)
            return REFUSED;
        c->type = cJSON_Object;
        for (simdjson::dom::key_value_pair kv : o) {
            built b;
            if ((item = append(c, &last)) == nullptr ||
                (item->string = copy(kv.key)) == nullptr)
                return NO_MEMORY;
            if ((b = fill(kv.value, item, depth + 1)) != BUILT)
                return b;
        }
        return BUILT;
    case element_type::STRING:
        if (e.get(sv) != simdjson::SUCCESS)
            return REFUSED;
        c->type = cJSON_String;
        return (c->valuestring = copy(sv)) != nullptr ? BUILT : NO_MEMORY;
    case element_type::INT64:
        if (e.get(i64) != simdjson::SUCCESS)
            return REFUSED;
        d = static_cast<double>(i64);
        break;
    case element_type::UINT64:
        if (e.get(u64) != simdjson::SUCCESS)
            return REFUSED;
        d = static_cast<double>(u64);
        break;
    case element_type::DOUBLE:
        if (e.get(d) != simdjson::SUCCESS)
            return REFUSED;
        break;
    case element_type::BOOL:
        if (e.get(t) != simdjson::SUCCESS)
            return REFUSED;
        if (t) {
            c->type = cJSON_True;
            c->valueint = 1;
        } else {
            c->type = cJSON_False;
        }
        return BUILT;
    case element_type::NULL_VALUE:
        c->type = cJSON_NULL;
        return BUILT;
    }
    c->type = cJSON_Number;
    c->valuedouble = d;
    c->valueint = saturate(d);
    return BUILT;
}

/* The bytes a JSON number may be made of, as cJSON's parse_number copies them: 16 at once. */
inline unsigned number_bytes(const char *p)
{
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    const __m128i t = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    __m128i m = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t); /* a digit */

    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('+')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8('e')));
    return static_cast<unsigned>(_mm_movemask_epi8(m));
}

inline bool number_byte(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

/*
 * Whether s[0, len) has a run of 64 or more bytes that a number may be made of (in a string or
 * not): cJSON 1.7.15 reads no more than 63 bytes of a number and refuses what follows (Debian's
 * security updates lift that), so such a text goes to cJSON, whichever cJSON it is. A run of 64
 * covers three whole blocks of 16 counted from s, so every third block is looked at, and a
 * block of such bytes only is measured byte by byte.
 */
bool long_number_run(const char *s, size_t len)
{
    for (size_t b = 0; b + 16 <= len; b += 48) {
        if (number_bytes(s + b) != 0xffff)
            continue;
        size_t i = b, j = b + 16;
        while (i > 0 && number_byte(s[i - 1]))
            i--;
        while (j < len && number_byte(s[j]))
            j++;
        if (j - i >= 64)
            return true;
    }
    return false;
}

/*
 * simdjson's kernel, chosen once before the first parser is made: the AVX2 one on AMD's CPUs,
 * where simdjson picks the AVX-512 one. On this project's EPYC (Zen 4), in alternating runs, the
 * AVX-512 kernel parsed the benchmark's 4 KB chat body in 2.88 us and the AVX2 one in 2.62
 * (means of 6): Zen 4 runs 512-bit operations as two 256-bit halves. simdjson's own setting,
 * SIMDJSON_FORCE_IMPLEMENTATION, still decides when it is set.
 */
void choose_kernel()
{
    static const bool chosen = [] {
        const simdjson::implementation *avx2 =
            simdjson::get_available_implementations()["haswell"];
        if (std::getenv("SIMDJSON_FORCE_IMPLEMENTATION") == nullptr &&
            __builtin_cpu_is("amd") && avx2 != nullptr && avx2->supported_by_runtime_system() &&
            simdjson::get_active_implementation()->name() == "icelake")
            simdjson::get_active_implementation() = avx2;
        return true;
    }();
    (void)chosen;
}

/* Grows the parser to take len bytes (<= JSONFAST_MAX), in powers of two. */
bool make_room(size_t len)
{
    size_t cap = parser.capacity();

    if (len <= cap)
        return true;
    choose_kernel(); /* before the parser's first allocation, which takes the kernel */
    cap = cap < FIRST_CAPACITY ? FIRST_CAPACITY : cap;
    while (cap < len)
        cap *= 2;
    return parser.allocate(cap < JSONFAST_MAX ? cap : JSONFAST_MAX) == simdjson::SUCCESS;
}

} // namespace

extern "C" cJSON *jsonfast_parse_cjson(const char *s, size_t len, const char **end)
{
    return cJSON_ParseWithLengthOpts(s, len, end, 0);
}

extern "C" void jsonfast_thread_prepare(void)
{
    element root;

    if (!make_room(FIRST_CAPACITY))
        return; /* the first parse tries again */
    simdjson::error_code warmed = parser.parse("{}", 2).get(root);
    (void)warmed; /* "{}" parses; were it to fail, the first parse would meet that again */
}

extern "C" unsigned long jsonfast_fallbacks(void)
{
    return fallbacks;
}

/* cJSON's parse of what simdjson did not take. */
static cJSON *fall_back(const char *s, size_t len, const char **end)
{
    fallbacks++;
    return jsonfast_parse_cjson(s, len, end);
}

extern "C" cJSON *jsonfast_parse(const char *s, size_t len, const char **end)
{
    element root;

    if (len > JSONFAST_MAX || long_number_run(s, len) || !make_room(len) ||
        parser.parse(s, len).get(root) != simdjson::SUCCESS)
        return fall_back(s, len, end);
    cJSON *c = new_item();
    if (c == nullptr)
        return fall_back(s, len, end);
    if (fill(root, c, 0) != BUILT) {
        cJSON_Delete(c);
        return fall_back(s, len, end); /* says what is wrong, or has the memory */
    }
    if (end != nullptr) {
        /* simdjson took the whole text: only whitespace follows the value */
        size_t n = len;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                         s[n - 1] == '\r'))
            n--;
        *end = s + n;
    }
    return c;
}
