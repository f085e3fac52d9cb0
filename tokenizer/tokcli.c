/*
 * tokcli: the tokenizer's subcommands, `tokengate count`, `encode` and `decode`.
 */
#include "tokenizer/tokcli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tokenizer/chat.h"
#include "tokenizer/tok.h"

#define MAX_INPUT ((size_t)1 << 30) /* 1 GiB: the CLI reads its whole input into memory */

typedef struct opts {
    const char *cmd;
    const char *encoding;
    const char *model;
    const char *file;
    unsigned flags;
    int chat;
    int jsonl;
    int json;
} opts;

static void cli_usage(FILE *f, const char *cmd)
{
    fprintf(f,
            "usage: tokengate %s [--encoding E | --model M]%s [FILE|-]\n"
            "  encodings: cl100k_base, o200k_base (default), p50k_base, r50k_base\n",
            cmd,
            strcmp(cmd, "count") == 0    ? " [--allow-special] [--chat [--json]]"
            : strcmp(cmd, "encode") == 0 ? " [--allow-special] [--jsonl]"
                                         : "");
}

/* Parses the options; returns 0, or 2 after printing what is wrong. */
static int parse(int argc, char **argv, const char *cmd, opts *o)
{
    memset(o, 0, sizeof(*o));
    o->cmd = cmd;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--encoding") == 0 && i + 1 < argc)
            o->encoding = argv[++i];
        else if (strcmp(a, "--model") == 0 && i + 1 < argc)
            o->model = argv[++i];
        else if (strcmp(a, "--allow-special") == 0 && strcmp(cmd, "decode") != 0)
            o->flags |= TOK_ALLOW_SPECIAL;
        else if (strcmp(a, "--chat") == 0 && strcmp(cmd, "count") == 0)
            o->chat = 1;
        else if (strcmp(a, "--json") == 0 && strcmp(cmd, "count") == 0)
            o->json = 1;
        else if (strcmp(a, "--jsonl") == 0 && strcmp(cmd, "encode") == 0)
            o->jsonl = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_usage(stdout, cmd);
            exit(0);
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && o->file == NULL)
            o->file = a;
        else {
            fprintf(stderr, "tokengate %s: unknown or incomplete option '%s'\n", cmd, a);
            cli_usage(stderr, cmd);
            return 2;
        }
    }
    if (o->encoding != NULL && o->model != NULL) {
        fprintf(stderr, "tokengate %s: give --encoding or --model, not both\n", cmd);
        return 2;
    }
    return 0;
}

/* The encoding the options name; NULL after printing why not. */
static const tok_enc *pick(const opts *o)
{
    const char *name = o->encoding;
    const tok_enc *e;

    if (name == NULL)
        name = o->model != NULL ? tok_encoding_for_model(o->model) : "o200k_base";
    e = tok_encoding(name);
    if (e == NULL)
        fprintf(stderr,
                "tokengate %s: unknown encoding '%s' (known: cl100k_base, o200k_base, "
                "p50k_base, r50k_base)\n",
                o->cmd, name);
    return e;
}

/* Reads all of FILE (or standard input for NULL or "-") into a malloc'd buffer. */
static char *slurp(const opts *o, size_t *len)
{
    int std = o->file == NULL || strcmp(o->file, "-") == 0;
    FILE *f = std ? stdin : fopen(o->file, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf;

    if (f == NULL) {
        fprintf(stderr, "tokengate %s: %s: %s\n", o->cmd, o->file, strerror(errno));
        return NULL;
    }
    buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) {
                fprintf(stderr, "tokengate %s: reading %s: %s\n", o->cmd,
                        std ? "standard input" : o->file, strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
        if (cap >= MAX_INPUT) {
            fprintf(stderr, "tokengate %s: input larger than 1 GiB\n", o->cmd);
            free(buf);
            buf = NULL;
            break;
        }
        cap *= 2;
        char *grown = realloc(buf, cap + 1);
        if (grown == NULL)
            free(buf);
        buf = grown;
    }
    if (!std)
        fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* Writes ids as decimal numbers separated by spaces, then a newline. */
static void put_ids(FILE *f, const uint32_t *v, size_t n)
{
    char buf[8192];
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char tmp[12];
        int k = 0;
        uint32_t x = v[i];
        do {
            tmp[k++] = (char)('0' + x % 10);
            x /= 10;
        } while (x != 0);
        if (o + (size_t)k + 2 > sizeof(buf)) {
            fwrite(buf, 1, o, f);
            o = 0;
        }
        if (i > 0)
            buf[o++] = ' ';
        while (k > 0)
            buf[o++] = tmp[--k];
    }
    buf[o++] = '\n';
    fwrite(buf, 1, o, f);
}

/* --jsonl: every line of the input is a JSON string; prints one line of ids for each. */
static int encode_jsonl(const tok_enc *e, const opts *o, char *in, size_t len)
{
    tok_ids ids = {0};
    size_t lineno = 0;
    char *p = in, *end = in + len;
    int rc = 0;

    while (p < end && rc == 0) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        cJSON *j;

        lineno++;
        *stop = '\0';
        if (tok_json_has_nul_escape(p, (size_t)(stop - p))) {
            fprintf(stderr,
                    "tokengate encode: line %zu: the string holds U+0000, which the JSON parser "
                    "cannot keep; give such text as a file instead\n",
                    lineno);
            rc = 1;
            break;
        }
        j = cJSON_ParseWithLength(p, (size_t)(stop - p));
        if (!cJSON_IsString(j)) {
            fprintf(stderr, "tokengate encode: line %zu: not a JSON string\n", lineno);
            rc = 1;
        } else {
            ids.n = 0;
            if (tok_encode(e, j->valuestring, strlen(j->valuestring), o->flags, &ids) != 0) {
                fprintf(stderr, "tokengate encode: out of memory\n");
                rc = 1;
            } else
                put_ids(stdout, ids.v, ids.n);
        }
        cJSON_Delete(j);
        p = stop + 1;
    }
    tok_ids_free(&ids);
    return rc;
}

int tok_cmd_encode(int argc, char **argv)
{
    opts o;
    const tok_enc *e;
    tok_ids ids = {0};
    size_t len;
    char *in;
    int rc = 0;

    if (parse(argc, argv, "encode", &o) != 0)
        return 2;
    if ((e = pick(&o)) == NULL)
        return 2;
    if ((in = slurp(&o, &len)) == NULL)
        return 1;
    if (o.jsonl)
        rc = encode_jsonl(e, &o, in, len);
    else if (tok_encode(e, in, len, o.flags, &ids) != 0) {
        fprintf(stderr, "tokengate encode: out of memory\n");
        rc = 1;
    } else
        put_ids(stdout, ids.v, ids.n);
    tok_ids_free(&ids);
    free(in);
    return rc;
}

int tok_cmd_decode(int argc, char **argv)
{
    opts o;
    const tok_enc *e;
    tok_ids ids = {0};
    size_t len;
    char *in, *p;
    int rc = 0;

    if (parse(argc, argv, "decode", &o) != 0)
        return 2;
    if ((e = pick(&o)) == NULL)
        return 2;
    if ((in = slurp(&o, &len)) == NULL)
        return 1;
    /* every id is checked before a byte is written */
    for (p = in; rc == 0;) {
        char *end;
        unsigned long long v;
        size_t tl;

        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        errno = 0;
        v = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : 0;
        if (!(*p >= '0' && *p <= '9') || errno != 0 || v > UINT32_MAX ||
            tok_token_bytes(e, (uint32_t)v, &tl) == NULL) {
            int w = (int)strcspn(p, " \t\r\n,");
            fprintf(stderr, "tokengate decode: '%.*s' is not a token id of %s\n", w > 40 ? 40 : w,
                    p, tok_name(e));
            rc = 1;
            break;
        }
        if (ids.n == ids.cap) {
            size_t cap = ids.cap ? ids.cap * 2 : 1024;
            uint32_t *g = realloc(ids.v, cap * sizeof(uint32_t));
            if (g == NULL) {
                fprintf(stderr, "tokengate decode: out of memory\n");
                rc = 1;
                break;
            }
            ids.v = g;
            ids.cap = cap;
        }
        ids.v[ids.n++] = (uint32_t)v;
        p = end;
    }
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        size_t tl;
        const char *b = tok_token_bytes(e, ids.v[i], &tl);
        fwrite(b, 1, tl, stdout);
    }
    tok_ids_free(&ids);
    free(in);
    return rc;
}

int tok_cmd_count(int argc, char **argv)
{
    opts o;
    const tok_enc *e = NULL;
    size_t len;
    char *in;
    int rc = 0;

    if (parse(argc, argv, "count", &o) != 0)
        return 2;
    if (!o.chat && (e = pick(&o)) == NULL)
        return 2;
    if ((in = slurp(&o, &len)) == NULL)
        return 1;
    if (o.chat) {
        rc = tok_chat_cli(in, len, o.encoding, o.model, o.json);
    } else {
        uint64_t n;
        if (tok_count(e, in, len, o.flags, &n) != 0) {
            fprintf(stderr, "tokengate count: out of memory\n");
            rc = 1;
        } else
            printf("%" PRIu64 "\n", n);
    }
    free(in);
    return rc;
}
