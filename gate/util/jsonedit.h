/*
 * jsonedit: edits of a request body's top-level members that keep every other byte as the
 * client sent it. Re-printing a parsed body would change numbers (integers past 2^53 lose
 * digits in a double) and formatting; a splice changes only the member the gate means to.
 * Byte spans come from jsmn, a JSON tokenizer (Debian libjsmn-dev).
 */
#ifndef TG_JSONEDIT_H
#define TG_JSONEDIT_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct jsonedit_op {
    const char *key;   /* top-level member name (plain, no escapes) */
    const char *value; /* its new value, as JSON text */
};

/*
 * Returns a malloc'd copy of the JSON object body (len bytes) with each op's member set:
 * its value replaced in place when the member exists, else the member appended before the
 * closing brace. *out_len gets the length. Returns NULL when body is not a JSON object, when a
 * top-level key holds an escape or an op's key appears twice (ambiguous), or when memory runs
 * out; the caller then prints the edited document instead. Its token array comes from cJSON's
 * allocator (a request's arena within jsonmem_enter). Time is about len times the depth of
 * nesting (jsmn walks up the open containers at each closing bracket): callers splice only
 * bodies nested at most JSONEDIT_MAX_DEPTH deep (see jsonedit_depth), which keeps it linear.
 */
char *jsonedit_apply(const char *body, size_t len, const struct jsonedit_op *ops, int nops,
                     size_t *out_len);

/* Nesting deeper than this is printed from the parsed document, not spliced. Requests nest far
 * less (a tool schema is some ten levels); a body of 1.7 MB nested 990 deep took 1 s to splice. */
#define JSONEDIT_MAX_DEPTH 64

/* The depth of the deepest value under root (a scalar or an empty container is 1). Linear. */
int jsonedit_depth(const cJSON *root);

/*
 * Whether a JSON text that cJSON parsed has a string holding U+0000: a NUL byte, or the
 * escape \u0000. cJSON keeps strings as C strings and reads such a string cut at the NUL,
 * while the provider reads all of it: a model priced as one name and served as another, a
 * prompt counted short. Returns 1 or 0; linear in len.
 */
int jsonedit_has_nul(const char *body, size_t len);

/*
 * Finds a key that appears twice in one object anywhere in the tree under root. Returns 1 with
 * *dup set to that name (owned by the tree), 0 when there is none (*dup NULL), -1 when memory
 * for the check runs out. Parsers disagree on which of two duplicates wins (cJSON takes the
 * first, Python the last), so a body with duplicates could say one thing to the gate and
 * another to the provider: the gate refuses it. Keys are compared as parsed (escapes decoded),
 * with a hash set per object: time linear in the size of the tree, memory (from cJSON's
 * allocator, so a request's arena) about 16 bytes per member of the largest object.
 */
int jsonedit_duplicate_key(const cJSON *root, const char **dup);

#endif
