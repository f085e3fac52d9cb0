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
 * out; the caller then prints the edited document instead.
 */
char *jsonedit_apply(const char *body, size_t len, const struct jsonedit_op *ops, int nops,
                     size_t *out_len);

/*
 * Whether a JSON text that cJSON parsed has a string holding U+0000: a NUL byte, or the
 * escape \u0000. cJSON keeps strings as C strings and reads such a string cut at the NUL,
 * while the provider reads all of it: a model priced as one name and served as another, a
 * prompt counted short. Returns 1 or 0; linear in len.
 */
int jsonedit_has_nul(const char *body, size_t len);

/*
 * Returns the name of the first key that appears twice in one object anywhere in the tree,
 * or NULL. Parsers disagree on which of two duplicates wins (cJSON takes the first, Python the
 * last), so a body with duplicates could say one thing to the gate and another to the
 * provider: the gate refuses it.
 */
const char *jsonedit_duplicate_key(const cJSON *root);

#endif
