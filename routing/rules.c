/*
 * rules: the features of a request body the rules read, and whether one rule holds.
 *
 * Features are read from the parsed body as it is (no copy) in one walk over the messages:
 * text is a pointer into the body, except when the text is spread over several blocks, which
 * are joined once into a malloc'd buffer. Conditions are tried cheapest first (names, headers,
 * counts, flags, budget, tokens, then text, then the classifier's label), so that a rule that
 * fails on a name costs no count and no regex.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing/route-int.h"

/* A regex match that backtracks more than this much gives up (no match): the subject is a
 * client's text, so a pattern that backtracks badly on it must not hold a worker. */
#define ROUTE_MATCH_LIMIT 1000000

/* ---- features ---------------------------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_type(const cJSON *part, const char *t)
{
    const char *v = str_of(part, "type");
    return v != NULL && strcmp(v, t) == 0;
}

/* A part or block that carries text: OpenAI chat "text", Responses "input_text", Anthropic
 * "text". */
static const char *part_text(const cJSON *part)
{
    if (is_type(part, "text") || is_type(part, "input_text"))
        return str_of(part, "text");
    return NULL;
}

/* Whether a part or block is an image (OpenAI image_url / input_image, Anthropic image). */
static int part_image(const cJSON *part)
{
    return is_type(part, "image_url") || is_type(part, "input_image") || is_type(part, "image");
}

/* The text of content (a string, or an array of parts): *s points into the body when there is
 * one piece; several pieces are joined with line feeds into *owned. Returns 1 when content has
 * text. */
static int content_text(const cJSON *content, const char **s, size_t *n, char **owned)
{
    const cJSON *p;
    size_t total = 0;
    int pieces = 0;
    const char *one = NULL;

    if (cJSON_IsString(content)) {
        *s = content->valuestring;
        *n = strlen(content->valuestring);
        return 1;
    }
    if (!cJSON_IsArray(content))
        return 0;
    cJSON_ArrayForEach(p, content)
    {
        const char *t = part_text(p);
        if (t == NULL)
            continue;
        total += strlen(t) + (pieces ? 1 : 0);
        if (pieces++ == 0)
            one = t;
    }
    if (pieces == 0)
        return 0;
    if (pieces > 1) {
        char *buf = malloc(total + 1);
        if (buf != NULL) {
            size_t at = 0;
            cJSON_ArrayForEach(p, content)
            {
                const char *t = part_text(p);
                if (t == NULL)
                    continue;
                if (at > 0)
                    buf[at++] = '\n';
                size_t k = strlen(t);
                memcpy(buf + at, t, k);
                at += k;
            }
            buf[at] = '\0';
            free(*owned);
            *owned = buf;
            *s = buf;
            *n = at;
            return 1;
        }
        /* no memory: the first piece stands for the whole */
    }
    *s = one;
    *n = strlen(one);
    return 1;
}

/* Whether content (an array of parts) holds an image, tool results' content included. */
static int content_images(const cJSON *content)
{
    const cJSON *p;

    if (!cJSON_IsArray(content))
        return 0;
    cJSON_ArrayForEach(p, content)
    {
        if (part_image(p))
            return 1;
        if (is_type(p, "tool_result") &&
            content_images(cJSON_GetObjectItemCaseSensitive(p, "content")))
            return 1;
    }
    return 0;
}

/* Whether a user message has text of its own (Anthropic: not only tool results). */
static int has_text(const cJSON *content)
{
    const cJSON *p;

    if (cJSON_IsString(content))
        return 1;
    cJSON_ArrayForEach(p, content)
    {
        if (part_text(p) != NULL)
            return 1;
    }
    return 0;
}

static int nonempty_array(const cJSON *v)
{
    return cJSON_IsArray(v) && v->child != NULL;
}

void route_features_read(const cJSON *body, enum conf_format f, struct route_features *out)
{
    const cJSON *msgs, *m, *last = NULL, *sys1 = NULL, *v;
    int nsys = 0;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(body))
        return;
    msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!cJSON_IsArray(msgs)) /* OpenAI Responses: input (a string or items), instructions */
        msgs = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (cJSON_IsString(msgs)) {
        out->last_user = msgs->valuestring;
        out->last_user_len = strlen(msgs->valuestring);
        out->messages = 1;
    }
    const cJSON *list = cJSON_IsArray(msgs) ? msgs : NULL;
    cJSON_ArrayForEach(m, list)
    {
        const char *role = str_of(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        out->messages++;
        if (!out->images && content_images(content))
            out->images = 1;
        if (role == NULL)
            continue;
        if (strcmp(role, "user") == 0) {
            /* an Anthropic user turn of tool results only is not what the user asked */
            if (f == CONF_FMT_OPENAI || has_text(content))
                last = m;
        } else if (f == CONF_FMT_OPENAI &&
                   (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)) {
            if (nsys++ == 0)
                sys1 = m;
        }
    }
    if (last != NULL && !content_text(cJSON_GetObjectItemCaseSensitive(last, "content"),
                                      &out->last_user, &out->last_user_len, &out->owned[0])) {
        out->last_user = NULL;
        out->last_user_len = 0;
    }

    /* the system prompt */
    v = cJSON_GetObjectItemCaseSensitive(body, f == CONF_FMT_ANTHROPIC ? "system" : "instructions");
    if (v != NULL && content_text(v, &out->system, &out->system_len, &out->owned[1])) {
        /* Anthropic's system, or Responses' instructions */
    } else if (nsys == 1) {
        content_text(cJSON_GetObjectItemCaseSensitive(sys1, "content"), &out->system,
                     &out->system_len, &out->owned[1]);
    } else if (nsys > 1) {
        /* several system messages: joined in order */
        size_t total = 0;
        cJSON_ArrayForEach(m, msgs)
        {
            const char *role = str_of(m, "role"), *s;
            size_t n;
            char *tmp = NULL;
            if (role == NULL || (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0))
                continue;
            if (content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &s, &n, &tmp))
                total += n + 1;
            free(tmp);
        }
        char *buf = malloc(total + 1);
        size_t at = 0;
        const cJSON *again = buf ? msgs : NULL;
        cJSON_ArrayForEach(m, again)
        {
            const char *role = str_of(m, "role"), *s;
            size_t n;
            char *tmp = NULL;
            if (role == NULL || (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0))
                continue;
            if (content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &s, &n, &tmp)) {
                if (at > 0)
                    buf[at++] = '\n';
                memcpy(buf + at, s, n);
                at += n;
            }
            free(tmp);
        }
        if (buf != NULL) {
            buf[at] = '\0';
            out->owned[1] = buf;
            out->system = buf;
            out->system_len = at;
        }
    }

    v = cJSON_GetObjectItemCaseSensitive(body, "tools");
    out->tools =
        nonempty_array(v) || nonempty_array(cJSON_GetObjectItemCaseSensitive(body, "functions"));

    /* JSON output: OpenAI response_format (chat) or text.format (Responses); Anthropic
     * output_format, or a tool_choice that forces a tool named like json */
    if (f == CONF_FMT_OPENAI) {
        v = cJSON_GetObjectItemCaseSensitive(body, "response_format");
        if (v == NULL)
            v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "text"),
                                                 "format");
        out->json_output = is_type(v, "json_object") || is_type(v, "json_schema");
    } else {
        v = cJSON_GetObjectItemCaseSensitive(body, "output_format");
        if (cJSON_IsObject(v)) {
            out->json_output = 1;
        } else {
            const cJSON *tc = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
            const char *name = str_of(tc, "name");
            if (is_type(tc, "tool") && name != NULL) {
                for (const char *p = name; *p && !out->json_output; p++)
                    out->json_output = strncasecmp(p, "json", 4) == 0;
            }
        }
    }
}

void route_features_free(struct route_features *f)
{
    for (int i = 0; i < 2; i++) {
        free(f->owned[i]);
        f->owned[i] = NULL;
    }
}

/* ---- text ---------------------------------------------------------------------------------- */

static int word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* How common a byte is in text (English letter frequencies per mille, case folded): the
 * keyword's rarest byte is the one searched for, so that memchr skips most of the text. */
static unsigned rarity(unsigned char c)
{
    static const unsigned char letters[26] = {82, 15, 28, 43, 127, 22, 20, 61, 70, 2,  8, 40, 24,
                                              67, 75, 19, 1,  60,  63, 91, 28, 10, 24, 2, 20, 1};
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c + 32);
    if (c >= 'a' && c <= 'z')
        return letters[c - 'a'];
    return c == ' ' ? 200 : 5;
}

/* Whether kw (k bytes) is at s + at as a whole word, case-insensitive. */
static int keyword_at(const char *s, size_t n, size_t at, const char *kw, size_t k)
{
    if (word_char((unsigned char)kw[0]) && at > 0 && word_char((unsigned char)s[at - 1]))
        return 0;
    if (word_char((unsigned char)kw[k - 1]) && at + k < n && word_char((unsigned char)s[at + k]))
        return 0;
    return strncasecmp(s + at, kw, k) == 0;
}

int route_keyword_in(const char *s, size_t n, const char *kw)
{
    size_t k = strlen(kw), j = 0;

    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if (rarity((unsigned char)kw[i]) < rarity((unsigned char)kw[j]))
            j = i;
    /* the anchor kw[j] in either case, each found with memchr, taken in order */
    unsigned char lo = (unsigned char)tolower((unsigned char)kw[j]);
    unsigned char up = (unsigned char)toupper((unsigned char)kw[j]);
    const char *end = s + n - (k - 1 - j); /* an anchor at or past here leaves no room */
    const char *pl = memchr(s + j, lo, (size_t)(end - (s + j)));
    const char *pu = up != lo ? memchr(s + j, up, (size_t)(end - (s + j))) : NULL;
    while (pl != NULL || pu != NULL) {
        const char *q = pu == NULL || (pl != NULL && pl < pu) ? pl : pu;
        if (keyword_at(s, n, (size_t)(q - s) - j, kw, k))
            return 1;
        if (q == pl)
            pl = memchr(q + 1, lo, (size_t)(end - (q + 1)));
        else
            pu = memchr(q + 1, up, (size_t)(end - (q + 1)));
    }
    return 0;
}

static pthread_once_t mctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *mctx; /* set once, read-only after: the match limit */

static void mctx_make(void)
{
    mctx = pcre2_match_context_create(NULL);
    if (mctx != NULL)
        pcre2_set_match_limit(mctx, ROUTE_MATCH_LIMIT);
}

/* Matches a compiled regex on n bytes at s (which = 0 last user, 1 system). Returns 1 match,
 * 0 no match, -1 an error (invalid UTF-8, match limit, no memory) with its text in err. */
static int regex_match(struct route_ctx *x, void *code, int which, const char *s, size_t n,
                       char *err, size_t errcap)
{
    int rc;

    pthread_once(&mctx_once, mctx_make);
    if (x->md == NULL) {
        x->md = pcre2_match_data_create(1, NULL);
        if (x->md == NULL) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, x->utf_ok[which] ? PCRE2_NO_UTF_CHECK : 0, x->md,
                     mctx);
    if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH) {
        x->utf_ok[which] = 1; /* checked once: the text is valid UTF-8 */
        return rc >= 0;
    }
    pcre2_get_error_message(rc, (PCRE2_UCHAR *)err, errcap);
    return -1;
}

/* Whether text matches tm (its regex or any keyword). With a trace, what matched or not. */
static int text_holds(struct route_ctx *x, const struct conf_text_match *tm, int which,
                      const char *what, char *why, size_t cap)
{
    const char *s = which ? x->f.system : x->f.last_user;
    size_t n = which ? x->f.system_len : x->f.last_user_len;
    char err[128];

    if (s == NULL) {
        if (x->trace)
            snprintf(why, cap, "%s: the request has no %s text", what,
                     which ? "system prompt" : "user message");
        return 0;
    }
    if (tm->code != NULL) {
        int rc = regex_match(x, tm->code, which, s, n, err, sizeof(err));
        if (rc == 1) {
            if (x->trace)
                snprintf(why, cap, "%s (%zu bytes) matches regex '%s'", what, n, tm->regex);
            return 1;
        }
        if (rc < 0 && x->trace)
            route_note(x->trace, "  (%s regex '%s' gave up: %s; taken as no match)", what,
                       tm->regex, err);
    }
    for (int i = 0; i < tm->nkeywords; i++) {
        if (route_keyword_in(s, n, tm->keywords[i])) {
            if (x->trace)
                snprintf(why, cap, "%s (%zu bytes) has keyword '%s'", what, n, tm->keywords[i]);
            return 1;
        }
    }
    if (x->trace) {
        int at = snprintf(why, cap, "%s (%zu bytes) has", what, n);
        if (tm->code != NULL && at > 0 && (size_t)at < cap)
            at += snprintf(why + at, cap - (size_t)at, " no match of regex '%s'%s", tm->regex,
                           tm->nkeywords ? " and" : "");
        if (tm->nkeywords && at > 0 && (size_t)at < cap)
            at += snprintf(why + at, cap - (size_t)at, " none of the keywords");
        for (int i = 0; i < tm->nkeywords && at > 0 && (size_t)at < cap; i++)
            at += snprintf(why + at, cap - (size_t)at, "%s%s", i ? ", " : " ", tm->keywords[i]);
    }
    return 0;
}

/* ---- conditions --------------------------------------------------------------------------- */

static int in_list(char **list, int n, const char *s)
{
    if (s == NULL)
        return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

/* Writes "[a, b, c]" of a list into buf. */
static const char *list_text(char **list, int n, char *buf, size_t cap)
{
    size_t at = 0;

    buf[0] = '\0';
    for (int i = 0; i < n && at + 1 < cap; i++) {
        int k = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", list[i]);
        if (k < 0)
            break;
        at += (size_t)k;
    }
    return buf;
}

int64_t route_ctx_tokens(struct route_ctx *x)
{
    if (x->tokens == -2)
        x->tokens = x->in->input_tokens ? x->in->input_tokens(x->in->count_arg, NULL) : -1;
    return x->tokens;
}

/* More than the rules' count of the input can be (in->input_bound at the calibration of the
 * model asked for, whose tokenizer counts for the rules), or 0 when not known. */
static double rule_bound(struct route_ctx *x)
{
    const struct conf_model *m;
    double f = 1;

    if (x->in->input_bound <= 0)
        return 0;
    m = conf_find_model(x->in->conf, x->in->model);
    if (m != NULL && m->calibration > 1)
        f = m->calibration;
    return (double)x->in->input_bound * f;
}

static void features(struct route_ctx *x)
{
    if (!x->have_f) {
        route_features_read(x->in->body, x->in->format, &x->f);
        x->have_f = 1;
    }
}

/* A bounded count condition: whether v is within [lo, hi] (-1: no bound). */
static int in_range(int64_t v, int64_t lo, int64_t hi, const char *what, struct route_ctx *x,
                    char *why, size_t cap)
{
    if (lo < 0 && hi < 0)
        return 1;
    if (v < 0) {
        if (x->trace)
            snprintf(why, cap, "%s: not known (the body could not be counted)", what);
        return 0;
    }
    if (lo >= 0 && v < lo) {
        if (x->trace)
            snprintf(why, cap, "%s %lld < min %lld", what, (long long)v, (long long)lo);
        return 0;
    }
    if (hi >= 0 && v > hi) {
        if (x->trace)
            snprintf(why, cap, "%s %lld > max %lld", what, (long long)v, (long long)hi);
        return 0;
    }
    return 1;
}

static int tri_holds(enum conf_tristate want, int have, const char *what, struct route_ctx *x,
                     char *why, size_t cap)
{
    if (want == CONF_ANY || (want == CONF_YES) == (have != 0))
        return 1;
    if (x->trace)
        snprintf(why, cap, "%s: the rule wants %s, the request has %s", what,
                 want == CONF_YES ? "some" : "none", have ? "some" : "none");
    return 0;
}

/* A name condition (agent, team, department, model). */
static int name_holds(char **list, int n, const char *have, const char *what, struct route_ctx *x,
                      char *why, size_t cap)
{
    char buf[200];

    if (n == 0 || in_list(list, n, have))
        return 1;
    if (x->trace)
        snprintf(why, cap, "%s is %s%s%s, the rule wants %s", what, have ? "'" : "",
                 have ? have : "not known", have ? "'" : "", list_text(list, n, buf, sizeof(buf)));
    return 0;
}

static int header_holds(struct route_ctx *x, const struct conf_header_match *h, char *why,
                        size_t cap)
{
    const char *v = x->in->header ? x->in->header(x->in->header_arg, h->name) : NULL;
    char err[128];

    if (v == NULL) {
        if (x->trace)
            snprintf(why, cap, "header %s: absent", h->name);
        return 0;
    }
    if (h->value != NULL && strcmp(v, h->value) == 0)
        return 1;
    if (h->code != NULL) {
        /* header values are not the body's text: always checked as UTF-8 (which 2 slots
         * would not cover, so no memo) */
        int rc;
        pthread_once(&mctx_once, mctx_make);
        if (x->md == NULL && (x->md = pcre2_match_data_create(1, NULL)) == NULL)
            return 0;
        rc = pcre2_match(h->code, (PCRE2_SPTR)v, strlen(v), 0, 0, x->md, mctx);
        if (rc >= 0)
            return 1;
        if (rc != PCRE2_ERROR_NOMATCH && x->trace) {
            pcre2_get_error_message(rc, (PCRE2_UCHAR *)err, sizeof(err));
            route_note(x->trace, "  (header %s regex gave up: %s; taken as no match)", h->name,
                       err);
        }
    }
    if (x->trace)
        snprintf(why, cap, "header %s is '%.80s', the rule wants %s '%s'", h->name, v,
                 h->value ? "" : "a match of", h->value ? h->value : h->regex);
    return 0;
}

/* Appends printf text to buf (at *at, cap bytes), "; " between pieces. */
__attribute__((format(printf, 4, 5))) static void add(char *buf, size_t cap, size_t *at,
                                                      const char *fmt, ...)
{
    va_list ap;
    int k;

    if (*at + 3 >= cap)
        return;
    if (*at > 0) {
        memcpy(buf + *at, "; ", 3);
        *at += 2;
    }
    va_start(ap, fmt);
    k = vsnprintf(buf + *at, cap - *at, fmt, ap);
    va_end(ap);
    if (k > 0)
        *at = *at + (size_t)k < cap ? *at + (size_t)k : cap - 1;
}

/* What held, for a rule that matched (a trace only). tu, ts: what the text conditions said. */
static void held(struct route_ctx *x, const struct conf_rule *r, const char *tu, const char *ts,
                 char *why, size_t cap)
{
    const struct route_input *in = x->in;
    size_t at = 0;

    why[0] = '\0';
    if (r->nmodels)
        add(why, cap, &at, "model %s", in->model);
    if (r->nagents)
        add(why, cap, &at, "agent %s", in->agent);
    if (r->nteams)
        add(why, cap, &at, "team %s", in->team);
    if (r->ndepartments)
        add(why, cap, &at, "department %s", in->department);
    for (int i = 0; i < r->nheaders; i++)
        add(why, cap, &at, "header %s %s", r->headers[i].name,
            r->headers[i].value ? "has the value" : "matches the regex");
    if (r->messages_min >= 0 || r->messages_max >= 0)
        add(why, cap, &at, "messages %d", x->f.messages);
    if (r->tools != CONF_ANY)
        add(why, cap, &at, "tools %s", x->f.tools ? "present" : "absent");
    if (r->images != CONF_ANY)
        add(why, cap, &at, "images %s", x->f.images ? "present" : "absent");
    if (r->json_output != CONF_ANY)
        add(why, cap, &at, "JSON output %s", x->f.json_output ? "asked" : "not asked");
    if (r->budget_above >= 0)
        add(why, cap, &at, "budget %.1f%% used >= %d%%", in->budget_used * 100.0, r->budget_above);
    if (r->input_min >= 0 || r->input_max >= 0)
        add(why, cap, &at, "input tokens %lld", (long long)x->tokens);
    if (tu[0])
        add(why, cap, &at, "%s", tu);
    if (ts[0])
        add(why, cap, &at, "%s", ts);
    if (r->nlabels)
        add(why, cap, &at, "classifier label '%s'", in->label);
    if (at == 0)
        snprintf(why, cap, "no condition: always");
}

enum rule_result route_rule_eval(struct route_ctx *x, const struct conf_rule *r, char *why,
                                 size_t cap)
{
    const struct route_input *in = x->in;

    why[0] = '\0';
    if (!name_holds(r->models, r->nmodels, in->model, "the model asked for", x, why, cap) ||
        !name_holds(r->agents, r->nagents, in->agent, "agent", x, why, cap) ||
        !name_holds(r->teams, r->nteams, in->team, "team", x, why, cap) ||
        !name_holds(r->departments, r->ndepartments, in->department, "department", x, why, cap))
        return RULE_NO;
    for (int i = 0; i < r->nheaders; i++)
        if (!header_holds(x, &r->headers[i], why, cap))
            return RULE_NO;
    if (r->messages_min >= 0 || r->messages_max >= 0 || r->tools != CONF_ANY ||
        r->images != CONF_ANY || r->json_output != CONF_ANY || r->last_user.code ||
        r->last_user.nkeywords || r->system.code || r->system.nkeywords)
        features(x);
    if (!in_range(x->f.messages, r->messages_min, r->messages_max, "messages", x, why, cap) ||
        !tri_holds(r->tools, x->f.tools, "tools", x, why, cap) ||
        !tri_holds(r->images, x->f.images, "images", x, why, cap) ||
        !tri_holds(r->json_output, x->f.json_output, "JSON output", x, why, cap))
        return RULE_NO;
    if (r->budget_above >= 0) {
        if (in->budget_used < 0) {
            if (x->trace)
                snprintf(why, cap, "budget: not known, the rule wants %d%% used or more",
                         r->budget_above);
            return RULE_NO;
        }
        if (in->budget_used * 100.0 < (double)r->budget_above) {
            if (x->trace)
                snprintf(why, cap, "budget %.1f%% used < %d%%", in->budget_used * 100.0,
                         r->budget_above);
            return RULE_NO;
        }
    }
    if (r->input_min >= 0 || r->input_max >= 0) {
        /* the body's bound settles most ranges without counting: more than any count, so a
         * min above it cannot hold and a max (alone) at or above it must */
        double b = rule_bound(x);
        if (b > 0 && r->input_min >= 0 && b < (double)r->input_min) {
            if (x->trace)
                snprintf(why, cap, "input tokens < min %lld (the body is %.0f bytes)",
                         (long long)r->input_min, b);
            return RULE_NO;
        }
        if (!(b > 0 && r->input_min < 0 && b <= (double)r->input_max) &&
            !in_range(route_ctx_tokens(x), r->input_min, r->input_max, "input tokens", x, why,
                      cap))
            return RULE_NO;
    }
    char tu[300] = "", ts[300] = "";
    if ((r->last_user.code || r->last_user.nkeywords) &&
        !text_holds(x, &r->last_user, 0, "last user message", why, cap))
        return RULE_NO;
    if (x->trace)
        snprintf(tu, sizeof(tu), "%s", why);
    why[0] = '\0';
    if ((r->system.code || r->system.nkeywords) &&
        !text_holds(x, &r->system, 1, "system prompt", why, cap))
        return RULE_NO;
    if (x->trace)
        snprintf(ts, sizeof(ts), "%s", why);
    if (r->nlabels > 0) {
        char buf[200];
        if (in->label == NULL)
            return RULE_ASK;
        if (!in_list(r->labels, r->nlabels, in->label)) {
            if (x->trace)
                snprintf(why, cap, "classifier label %s%s%s, the rule wants %s",
                         in->label[0] ? "'" : "", in->label[0] ? in->label : "none (no answer)",
                         in->label[0] ? "'" : "",
                         list_text(r->labels, r->nlabels, buf, sizeof(buf)));
            return RULE_NO;
        }
    }
    if (x->trace)
        held(x, r, tu, ts, why, cap);
    return RULE_YES;
}

void route_ctx_done(struct route_ctx *x)
{
    route_features_free(&x->f);
    x->have_f = 0;
    if (x->md != NULL) {
        pcre2_match_data_free(x->md);
        x->md = NULL;
    }
}
