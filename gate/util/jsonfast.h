/*
 * jsonfast: a request body's JSON parsed with simdjson, into the same cJSON tree that
 * cJSON_ParseWithLengthOpts would give.
 *
 * cJSON reads a string byte by byte, twice (to find its end, then to copy it); a 4 KB chat
 * request took it 4-6 us, more than counting its tokens. simdjson finds the structure and the
 * strings' ends 32 or 64 bytes at a time. The tree is then built from simdjson's document with
 * cJSON's allocator (cJSON_malloc: the request's arena in the gate), so that everything after
 * the parse (reading, editing, printing, cJSON_Delete) is unchanged.
 *
 * The result is cJSON's, exactly: whatever simdjson refuses (ill-formed UTF-8, control
 * characters in strings, a byte-order mark, a leading zero, a number out of double's range, text
 * after the value, a body over JSONFAST_MAX) is parsed again by cJSON, which accepts some of it
 * and says where the rest is wrong; and what simdjson accepts but cJSON refuses (more than
 * CJSON_NESTING_LIMIT levels, a number of more than 63 characters, which cJSON 1.7.15 reads
 * only in part) is handed to cJSON too. One difference is left: an integer written "-0" is 0
 * here and -0.0 in cJSON; the two compare equal, and cJSON prints both as 0.
 */
#ifndef TG_JSONFAST_H
#define TG_JSONFAST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest text parsed by simdjson; a larger one goes to cJSON. Each thread's simdjson
 * parser keeps about 14 bytes for each byte of the largest text it has parsed. */
#define JSONFAST_MAX ((size_t)512 << 10)

/*
 * As cJSON_ParseWithLengthOpts(s, len, end, 0): the tree of the JSON value at the start of
 * s[0, len), allocated with cJSON's hooks, or NULL (then cJSON_GetErrorPtr says where);
 * *end (when end is not NULL) is where the value ends.
 */
cJSON *jsonfast_parse(const char *s, size_t len, const char **end);

/* Makes this thread's parser ready (its buffers for a text of 16 KiB, simdjson's choice of
 * code for the CPU), as a gate worker does when it starts, rather than in its first request's
 * parse. Without it, or when it fails, the first parse does it. */
void jsonfast_thread_prepare(void);

/* The same with cJSON alone, for comparison (tests, benchmarks). */
cJSON *jsonfast_parse_cjson(const char *s, size_t len, const char **end);

/* How many texts jsonfast_parse has handed to cJSON on this thread (tests). */
unsigned long jsonfast_fallbacks(void);

#ifdef __cplusplus
}
#endif

#endif
