#include "gate/util/jsonedit.h"

#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
/* parent links make jsmn linear: without them it looks back over every token so far for the
 * open container at each ',' (150,000 keys took seconds) */
#define JSMN_PARENT_LINKS
#include <jsmn.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tokenizer/tok.h"

struct splice {
    size_t start, end; /* bytes of body replaced; start == end inserts */
    const char *key;   /* set for an appended member */
    const char *value;
};

static int cmp_splice(const void *a, const void *b)
{
    const struct splice *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The byte span of a value token: strings include their quotes. */
static void value_span(const jsmntok_t *t, size_t *start, size_t *end)
{
    *start = (size_t)t->start;
    *end = (size_t)t->end;
    if (t->type == JSMN_STRING) {
        (*start)--;
        (*end)++;
    }
}

int jsonedit_has_nul(const char *body, size_t len)
{
    return memchr(body, '\0', len) != NULL || tok_json_has_nul_escape(body, len);
}

char *jsonedit_apply(const char *body, size_t len, const struct jsonedit_op *ops, int nops,
                     size_t *out_len)
{
    jsmn_parser p;
    jsmntok_t *tok = NULL;
    struct splice sp[8];
    char *out = NULL;
    int n;

    if (nops <= 0 || nops > 8)
        return NULL;
    jsmn_init(&p);
    n = jsmn_parse(&p, body, len, NULL, 0);
    if (n <= 0)
        return NULL;
    /* cJSON's allocator: within a request's scope, its arena, counted against its memory cap */
    tok = cJSON_malloc((size_t)n * sizeof(*tok));
    if (tok == NULL)
        return NULL;
    jsmn_init(&p);
    if (jsmn_parse(&p, body, len, tok, (unsigned)n) != n || tok[0].type != JSMN_OBJECT)
        goto done;

    for (int k = 0; k < nops; k++) {
        size_t klen = strlen(ops[k].key);
        int found = 0;
        sp[k].key = NULL;
        sp[k].value = ops[k].value;
        /* walk the top-level members: key at i, value at i + 1, then skip the value's tree */
        for (int i = 1; i < n;) {
            const jsmntok_t *key = &tok[i];
            size_t ks = (size_t)key->start, ke = (size_t)key->end;
            if (memchr(body + ks, '\\', ke - ks) != NULL)
                goto done; /* an escaped key might spell ours: leave it to the caller */
            int v = i + 1;
            if (ke - ks == klen && memcmp(body + ks, ops[k].key, klen) == 0) {
                if (found++)
                    goto done; /* twice at the top level */
                value_span(&tok[v], &sp[k].start, &sp[k].end);
            }
            int j = v + 1;
            while (j < n && tok[j].start < tok[v].end)
                j++;
            i = j;
        }
        if (!found) {
            /* append before the closing brace */
            sp[k].start = sp[k].end = (size_t)tok[0].end - 1;
            sp[k].key = ops[k].key;
        }
    }

    qsort(sp, (size_t)nops, sizeof(sp[0]), cmp_splice);
    size_t cap = len + 1;
    for (int k = 0; k < nops; k++)
        cap += strlen(sp[k].value) + (sp[k].key ? strlen(sp[k].key) + 4 : 0);
    out = malloc(cap);
    if (out == NULL)
        goto done;
    size_t o = 0, at = 0;
    int members = tok[0].size;
    for (int k = 0; k < nops; k++) {
        memcpy(out + o, body + at, sp[k].start - at);
        o += sp[k].start - at;
        if (sp[k].key != NULL) {
            if (members++ > 0)
                out[o++] = ',';
            out[o++] = '"';
            memcpy(out + o, sp[k].key, strlen(sp[k].key));
            o += strlen(sp[k].key);
            out[o++] = '"';
            out[o++] = ':';
        }
        memcpy(out + o, sp[k].value, strlen(sp[k].value));
        o += strlen(sp[k].value);
        at = sp[k].end;
    }
    memcpy(out + o, body + at, len - at);
    o += len - at;
    out[o] = '\0';
    *out_len = o;
done:
    cJSON_free(tok);
    return out;
}

/* Objects with at most this many members are checked pair by pair: no table needed. */
#define DUP_SMALL 8

/* The hash set of one object's keys, reused from object to object (only one is open at a
 * time: an object's own keys are checked before its members' values are walked). */
struct dupset {
    const cJSON **slot;
    size_t cap; /* a power of two, or 0 */
};

/* Returns 1 with *dup set when two members of obj (n of them) share a name, 0 when none do,
 * -1 when the table cannot be allocated. */
static int object_has_duplicate(const cJSON *obj, size_t n, struct dupset *set, const char **dup)
{
    size_t want = 16, mask;

    if (n <= DUP_SMALL) {
        for (const cJSON *c = obj->child; c != NULL; c = c->next)
            for (const cJSON *d = c->next; d != NULL; d = d->next)
                if (c->string != NULL && d->string != NULL && strcmp(c->string, d->string) == 0) {
                    *dup = c->string;
                    return 1;
                }
        return 0;
    }
    while (want < 2 * n)
        want *= 2; /* at most half full */
    if (want > set->cap) {
        cJSON_free(set->slot);
        set->cap = 0;
        set->slot = cJSON_malloc(want * sizeof(*set->slot));
        if (set->slot == NULL)
            return -1;
        set->cap = want;
    }
    mask = want - 1;
    memset(set->slot, 0, want * sizeof(*set->slot));
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        if (c->string == NULL)
            continue;
        size_t i = (size_t)XXH3_64bits(c->string, strlen(c->string)) & mask;
        for (; set->slot[i] != NULL; i = (i + 1) & mask) {
            if (strcmp(set->slot[i]->string, c->string) == 0) {
                *dup = set->slot[i]->string;
                return 1;
            }
        }
        set->slot[i] = c;
    }
    return 0;
}

static int walk_duplicates(const cJSON *node, struct dupset *set, const char **dup)
{
    if (cJSON_IsObject(node)) {
        size_t n = 0;
        for (const cJSON *c = node->child; c != NULL; c = c->next)
            n++;
        int rc = object_has_duplicate(node, n, set, dup);
        if (rc != 0)
            return rc;
    }
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        if (c->child != NULL) {
            int rc = walk_duplicates(c, set, dup);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int jsonedit_depth(const cJSON *root)
{
    int deepest = 0;

    if (root == NULL)
        return 0;
    for (const cJSON *c = root->child; c != NULL; c = c->next) {
        int d = jsonedit_depth(c);
        if (d > deepest)
            deepest = d;
    }
    return deepest + 1;
}

int jsonedit_duplicate_key(const cJSON *root, const char **dup)
{
    struct dupset set = {NULL, 0};
    int rc;

    *dup = NULL;
    if (root == NULL)
        return 0;
    rc = walk_duplicates(root, &set, dup);
    cJSON_free(set.slot);
    return rc;
}
