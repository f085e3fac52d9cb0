/*
 * libFuzzer target: the JSON edit splice (gate/util/jsonedit.c) and the duplicate-key check, on
 * what the gate hands them: a body cJSON parsed whole (trailing whitespace only) as an object.
 * What must hold for any such body and edits:
 *  - jsonedit_duplicate_key finds a key exactly when some object holds one name twice (checked
 *    against a plain pairwise reading), and the name it returns is one of those;
 *  - on a body without duplicates, jsonedit_apply refuses only as its contract allows: a
 *    top-level key with an escape, or a body that jsmn does not read as an object (cJSON takes
 *    more, e.g. control bytes as whitespace; the gate then prints the edited tree instead);
 *    otherwise its result parses whole with cJSON as an object whose
 *    members are the body's, in order, each edited one holding its new value and every other
 *    one unchanged, and the members not in the body appended after them;
 *  - no edit count outside 1..8 is accepted.
 *
 * Input: byte 0 gives the number of edits (b % 10, so 0 and 9 are tried too); then two bytes
 * per edit: a key and a value from the tables below (a key already used is skipped); the rest
 * is the body. Seeds: tests/fuzz/seeds-jsonedit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gate/util/jsonedit.h"
#include "fuzz_json.h"

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Top-level names the gate edits, and others; plain (no escapes), as the contract wants. */
static const char *const keys[] = {
    "model",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "stream_options",
    "stream",
    "n",
    "messages",
    "input",
    "a",
    "",
    "x y",
    "\xc3\xa9t\xc3\xa9",
};
/* New values, as JSON text (the gate's come from cJSON_PrintUnformatted). */
static const char *const values[] = {
    "0",
    "1",
    "100000",
    "-1",
    "1e3",
    "12345678901234567890",
    "\"gpt-4o-mini\"",
    "\"\"",
    "\"a\\\"b\\\\c\\u00e9\\n\"",
    "true",
    "false",
    "null",
    "{\"include_usage\":true}",
    "{}",
    "[]",
    "[1,{\"a\":\"b\"},[null]]",
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define NVALUES (sizeof(values) / sizeof(values[0]))

static int only_space(const char *s, const char *end)
{
    for (; s < end; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

/* cJSON's parse of text as the gate does it: whole, or NULL. */
static cJSON *parse_whole(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);

    if (j != NULL && !only_space(end, text + len)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Whether a parsed op value v (no name) is the member m's value. */
static int same_value(const cJSON *v, const cJSON *m)
{
    cJSON copy = *m;

    copy.string = NULL;
    return same_tree(v, &copy);
}

/* Whether name appears twice in one object of the tree (pairwise, the obvious way). */
static int has_twice(const cJSON *node, const char *name)
{
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        if (cJSON_IsObject(node) && (name == NULL || strcmp(c->string, name) == 0))
            for (const cJSON *d = c->next; d != NULL; d = d->next)
                if (strcmp(c->string, d->string) == 0)
                    return 1;
        if (has_twice(c, name))
            return 1;
    }
    return 0;
}

/*
 * Whether jsonedit_apply may refuse the body: its contract allows it when a top-level key
 * holds an escape (cJSON keeps no spans: such a key needs a backslash in the body), or when the
 * body is not a JSON object to jsmn. cJSON takes more than strict JSON (any byte up to 0x20 as
 * whitespace, "+1"), and the gate then prints the edited document instead of splicing.
 */
static int may_refuse(const char *body, size_t len)
{
    jsmn_parser p;
    jsmntok_t *t;
    int n, refuse;

    if (memchr(body, '\\', len) != NULL)
        return 1;
    jsmn_init(&p);
    n = jsmn_parse(&p, body, len, NULL, 0);
    if (n <= 0)
        return 1;
    t = malloc((size_t)n * sizeof(*t));
    if (t == NULL)
        abort();
    jsmn_init(&p);
    refuse = jsmn_parse(&p, body, len, t, (unsigned)n) != n || t[0].type != JSMN_OBJECT;
    free(t);
    return refuse;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jsonedit_op ops[9];
    int nops = 0, want;
    size_t at = 1, out_len = 0;

    if (size < 1)
        return 0;
    want = data[0] % 10;
    for (int k = 0; k < want && at + 1 < size; k++, at += 2) {
        const char *key = keys[data[at] % NKEYS];
        int dup = 0;
        for (int j = 0; j < nops; j++)
            dup |= strcmp(ops[j].key, key) == 0;
        if (dup)
            continue;
        ops[nops].key = key;
        ops[nops++].value = values[data[at + 1] % NVALUES];
    }
    const char *body = (const char *)data + at;
    size_t len = size - at;

    cJSON *root = parse_whole(body, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return 0;
    }
    const char *dup = NULL;
    int found = jsonedit_duplicate_key(root, &dup);
    if (found < 0) { /* out of memory: nothing to compare */
        cJSON_Delete(root);
        return 0;
    }
    if (found != (dup != NULL) || (dup != NULL) != has_twice(root, NULL))
        abort();
    if (dup != NULL) {
        if (!has_twice(root, dup))
            abort();
        cJSON_Delete(root); /* the gate refuses the body: no edit follows */
        return 0;
    }

    char *out = jsonedit_apply(body, len, ops, nops, &out_len);
    if (nops < 1 || nops > 8) {
        if (out != NULL)
            abort();
        cJSON_Delete(root);
        return 0;
    }
    if (out == NULL) {
        if (!may_refuse(body, len))
            abort();
        cJSON_Delete(root);
        return 0;
    }
    if (out[out_len] != '\0' || strlen(out) > out_len)
        abort();
    cJSON *res = parse_whole(out, out_len);
    if (res == NULL || !cJSON_IsObject(res))
        abort();

    /* member by member, in order: the body's, each edited one with its new value; then the
     * members appended for the edits whose keys the body lacks, in any order */
    const cJSON *r = res->child;
    int seen[9] = {0};
    for (const cJSON *c = root->child; c != NULL; c = c->next, r = r ? r->next : NULL) {
        if (r == NULL || strcmp(c->string, r->string) != 0)
            abort();
        int k;
        for (k = 0; k < nops && strcmp(ops[k].key, c->string) != 0; k++)
            ;
        if (k < nops) {
            cJSON *v = cJSON_Parse(ops[k].value);
            if (v == NULL || !same_value(v, r))
                abort();
            cJSON_Delete(v);
            seen[k] = 1;
        } else if (!same_tree(c, r)) {
            abort();
        }
    }
    for (; r != NULL; r = r->next) {
        int k;
        for (k = 0; k < nops && (seen[k] || strcmp(r->string, ops[k].key) != 0); k++)
            ;
        if (k == nops)
            abort(); /* a member that is neither the body's nor an edit's */
        cJSON *v = cJSON_Parse(ops[k].value);
        if (v == NULL || !same_value(v, r))
            abort();
        cJSON_Delete(v);
        seen[k] = 1;
    }
    for (int k = 0; k < nops; k++)
        if (!seen[k])
            abort(); /* an edit that is not in the result */
    cJSON_Delete(res);
    cJSON_Delete(root);
    free(out);
    return 0;
}
