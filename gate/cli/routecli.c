/*
 * routecli: `tokengate route --explain`. The decision is route_decide's, as the gate makes it;
 * what the gate knows from its running state is taken from the config and its files here:
 *
 *   - the agent: the key's (--key), found in the config's keys and the ledger's as the gate's
 *     budget book finds it at start-up; the team, department and policy from the tree;
 *   - the input tokens: counted with the tokenizer of each target (tok_count_request, as
 *     gate/pipeline/tcount.c counts the request);
 *   - budget state: the spend the ledger holds in the current windows (no reservations: only a
 *     running gate has those), when the config names a ledger that can be read; else not known;
 *   - health: not known (every target is taken as healthy, no latency known);
 *   - the classifier's label: --label, else not given (a classifier rule does not match).
 */
#include "gate/cli/routecli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "gate/api/dialect.h"
#include "gate/api/outcap.h"
#include "gate/budget/budget.h"
#include "gate/budget/ledger.h"
#include "gate/cli/clitext.h"
#include "routing/route.h"
#include "tokenizer/chat.h"

#define ROUTE_CLI_HEADERS 16
#define ROUTE_CLI_MEMO 8

struct memo {
    const tok_enc *enc;
    double factor;
    int64_t tokens;
};

struct cli {
    const struct conf *c;
    const struct api_dialect *api;
    const cJSON *body;
    const char *asked;
    const char *hname[ROUTE_CLI_HEADERS], *hval[ROUTE_CLI_HEADERS];
    int nh;
    struct memo memo[ROUTE_CLI_MEMO];
    int nmemo;
};

static void route_usage(FILE *f)
{
    fprintf(f, "usage: tokengate route --explain REQUEST.json [--config FILE] [--key K] "
               "[--label L]\n"
               "                       [--api API] [--header NAME:VALUE]...\n"
               "  prints the routing decision for the request body, without sending anything:\n"
               "  each rule tried and why, the targets taken or skipped, the tier, the target\n"
               "  and the estimated cost there against the model asked for\n"
               "  --key     the agent's gate key (its agent, team, department, policy, budgets)\n"
               "  --label   the classifier's label (simple, moderate, complex) for classifier "
               "rules\n"
               "  --api     the API the body is sent to: chat, responses, embeddings, messages or\n"
               "            count_tokens (default: guessed from its shape)\n"
               "  --header  a request header the rules read (x-tokengate-priority: high)\n");
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tokengate route: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static const char *hdr(void *arg, const char *name)
{
    struct cli *x = arg;
    for (int i = 0; i < x->nh; i++)
        if (strcmp(x->hname[i], name) == 0)
            return x->hval[i];
    return NULL;
}

/* The name a model entry is counted under: what goes upstream. */
static const char *model_name(const struct cli *x, const struct conf_model *m)
{
    if (m->upstream_model)
        return m->upstream_model;
    return m->wildcard ? x->asked : m->name;
}

static int64_t count(void *arg, const struct conf_model *m)
{
    struct cli *x = arg;
    const char *name, *enc_name;
    double factor = 1.0;
    tok_count_result r;

    if (m == NULL)
        m = conf_find_model(x->c, x->asked);
    if (m != NULL) {
        name = model_name(x, m);
        enc_name = m->encoding ? m->encoding : tok_encoding_for_model(name);
        factor = m->calibration > 0 ? m->calibration : 1.0;
    } else {
        name = x->asked;
        enc_name = "o200k_base";
    }
    const tok_enc *e = tok_encoding(enc_name);
    if (e == NULL)
        return -1;
    for (int i = 0; i < x->nmemo; i++)
        if (x->memo[i].enc == e && x->memo[i].factor == factor)
            return x->memo[i].tokens;
    int64_t n = -1;
    if (tok_count_request(e, (tok_api)x->api->tok_api, x->body, name, factor, &r) == 0)
        n = (int64_t)r.tokens;
    if (x->nmemo < ROUTE_CLI_MEMO)
        x->memo[x->nmemo++] = (struct memo){e, factor, n};
    return n;
}

/* The client API the body looks written for: Anthropic when it has a top-level system or
 * blocks only Anthropic has; Responses when it has input and no messages; else chat. */
static const struct api_dialect *guess_api(const cJSON *body)
{
    static const char *const anthropic_blocks[] = {"tool_use", "tool_result", "image",
                                                   "document", "thinking",    NULL};
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages"), *m, *p;

    if (!cJSON_IsArray(msgs) && cJSON_GetObjectItemCaseSensitive(body, "input") != NULL)
        return &api_openai_responses;
    if (cJSON_GetObjectItemCaseSensitive(body, "system") != NULL ||
        cJSON_GetObjectItemCaseSensitive(body, "output_format") != NULL ||
        cJSON_GetObjectItemCaseSensitive(body, "stop_sequences") != NULL)
        return &api_anthropic_messages;
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const cJSON *blocks = cJSON_IsArray(content) ? content : NULL;
        cJSON_ArrayForEach(p, blocks)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
            for (int i = 0; cJSON_IsString(t) && anthropic_blocks[i]; i++)
                if (strcmp(t->valuestring, anthropic_blocks[i]) == 0)
                    return &api_anthropic_messages;
        }
    }
    return &api_openai_chat;
}

struct tightest {
    struct budget_book *b;
    int path[8], npath;
    double used; /* the largest used / limit, -1 none */
    char what[200];
};

static void on_view(void *arg, const struct budget_view *v)
{
    struct tightest *t = arg;
    int on = 0;
    char label[160];

    for (int i = 0; i < t->npath; i++)
        on |= t->path[i] == v->scope;
    if (!on)
        return;
    for (int usd = 0; usd < 2; usd++) {
        int64_t lim = usd ? v->limit.nusd : v->limit.tokens;
        int64_t used = usd ? v->used_nusd : v->used_tokens;
        if (lim <= 0)
            continue;
        double u = (double)used / (double)lim;
        if (u > t->used) {
            t->used = u;
            snprintf(t->what, sizeof(t->what), "%s's %s %s budget",
                     budget_scope_label(t->b, v->scope, label, sizeof(label)),
                     conf_window_name(v->window), usd ? "dollar" : "token");
        }
    }
}

/* The agent's policy knobs: the nearest scope up the tree that sets a policy. */
static const struct conf_policy *policy_of(const struct conf *c, int s)
{
    for (int n = 0; s >= 0 && s < c->nscopes && n < 8; s = c->scopes[s].parent, n++)
        if (c->scopes[s].policy >= 0)
            return &c->policies[c->scopes[s].policy];
    return NULL;
}

/* Cost in USD of input tokens and output tokens at m's price; -1 without a price. */
static double cost_at(const struct conf_model *m, int64_t in, int64_t out)
{
    if (!m->price.set || m->price.input < 0 || m->price.output < 0 || in < 0)
        return -1;
    return ((double)in * m->price.input + (double)out * m->price.output) / 1e6;
}

static void put_cost(const char *label, const struct conf_model *m, int64_t in, int64_t out)
{
    double v = cost_at(m, in, out);
    printf("%s", label);
    clitext_put(stdout, m->name);
    if (v < 0)
        printf(": not known (%s)\n", in < 0 ? "the body could not be counted" : "no price");
    else
        printf(": $%.6f (%lld input tokens at $%.2f/M + %lld output tokens at $%.2f/M)\n", v,
               (long long)in, m->price.input, (long long)out, m->price.output);
}

/* Prints the trace, each line indented, escaped (it quotes header values and names). */
static void put_trace(const struct route_trace *t)
{
    const char *s = t->buf;
    while (s != NULL && *s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)n, s);
        printf("  ");
        clitext_put(stdout, line);
        putchar('\n');
        s = nl ? nl + 1 : NULL;
    }
}

/* Reads the whole file at path, at most cap bytes. NULL with errno set (EFBIG past cap). */
static char *read_file(const char *path, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, room = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n == room) {
            if (room > cap) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            room = room ? room * 2 : 65536;
            char *nb = realloc(buf, room + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, room - n, f);
        n += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || n > cap) {
        free(buf);
        errno = bad ? EIO : EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int gate_cmd_route(int argc, char **argv)
{
    const char *config = "conf/tokengate.yaml", *file = NULL, *key = NULL, *label = NULL,
               *apiname = NULL;
    struct cli x = {0};
    char err[1024];
    int rc = 2;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--explain") == 0  ? &file
                            : strcmp(a, "--config") == 0 ? &config
                            : strcmp(a, "--key") == 0    ? &key
                            : strcmp(a, "--label") == 0  ? &label
                            : strcmp(a, "--api") == 0    ? &apiname
                                                         : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            route_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--header") == 0 && i + 1 < argc) {
            char *h = argv[++i], *colon = strchr(h, ':');
            if (colon == NULL || colon == h || x.nh == ROUTE_CLI_HEADERS)
                return fail("--header is NAME:VALUE (%d at most): '%s'", ROUTE_CLI_HEADERS, h);
            *colon = '\0';
            for (char *p = h; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            x.hname[x.nh] = h;
            x.hval[x.nh++] = v;
            continue;
        }
        if (slot == NULL || i + 1 >= argc) {
            route_usage(stderr);
            return fail("unknown or incomplete option '%s'", a);
        }
        *slot = argv[++i];
    }
    if (file == NULL) {
        route_usage(stderr);
        return fail("--explain REQUEST.json is required");
    }
    if (apiname != NULL) {
        static const struct {
            const char *name;
            const struct api_dialect *api;
        } apis[] = {{"chat", &api_openai_chat},
                    {"responses", &api_openai_responses},
                    {"embeddings", &api_openai_embeddings},
                    {"messages", &api_anthropic_messages},
                    {"count_tokens", &api_anthropic_count}};
        for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
            if (strcmp(apiname, apis[i].name) == 0)
                x.api = apis[i].api;
        if (x.api == NULL)
            return fail("--api is chat, responses, embeddings, messages or count_tokens, not "
                        "'%s'",
                        apiname);
    }

    struct conf *c = conf_load(config, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "tokengate route: invalid config: %s\n", err);
        return 1;
    }
    x.c = c;
    size_t len = 0;
    char *text = read_file(file, c->max_body_bytes, &len);
    cJSON *body = NULL;
    struct budget_book *b = NULL;
    struct ledger *l = NULL;
    struct route_trace trace = {0};
    if (text == NULL) {
        if (errno == EFBIG)
            fprintf(stderr,
                    "tokengate route: %s is larger than max_body_bytes (%zu): the gate "
                    "would refuse it (413)\n",
                    file, c->max_body_bytes);
        else
            fprintf(stderr, "tokengate route: cannot read %s: %s\n", file, strerror(errno));
        goto out;
    }
    body = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(body)) {
        fprintf(stderr, "tokengate route: %s is not a JSON object%s\n", file,
                body == NULL ? " (invalid JSON)" : "");
        goto out;
    }
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!cJSON_IsString(mj) || mj->valuestring[0] == '\0') {
        fprintf(stderr,
                "tokengate route: %s has no \"model\" (a string): there is nothing to "
                "route\n",
                file);
        goto out;
    }
    x.asked = mj->valuestring;
    x.body = body;
    int guessed = x.api == NULL;
    if (guessed)
        x.api = guess_api(body);
    struct outcap oc;
    if (outcap_read(x.api, body, &oc, err, sizeof(err)) < 0) {
        fprintf(stderr, "tokengate route: the gate would refuse %s (400): %s\n", file, err);
        goto out;
    }

    struct route_input in = {
        .conf = c,
        .model = x.asked,
        .body = body,
        .format = x.api->format,
        .translatable = x.api->ep == EP_CHAT || x.api->ep == EP_MESSAGES,
        .header = hdr,
        .header_arg = &x,
        .input_tokens = count,
        .count_arg = &x,
        .output_allowance = oc.value,
        .budget_used = -1,
        .max_latency_ms = -1,
    };
    int agent = -1;
    const char *budget_note = "not known";
    char budget_buf[400];
    if (c->nscopes > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
        char lerr[300] = "";
        if (c->ledger_path != NULL)
            l = ledger_open_readonly(c->ledger_path, lerr, sizeof(lerr));
        b = budget_book_new(c, l, now, err, sizeof(err));
        if (b == NULL) {
            fprintf(stderr, "tokengate route: %s\n", err);
            rc = 1;
            goto out;
        }
        if (key != NULL) {
            char key_id[24];
            if (budget_authenticate(b, key, strlen(key), &agent, key_id) != BUDGET_AUTH_OK) {
                fprintf(stderr,
                        "tokengate route: the key is not one of %s's keys%s (the gate "
                        "would answer 401)\n",
                        config, l ? " or its ledger's" : "");
                goto out;
            }
        } else {
            agent = budget_anonymous(b);
        }
        if (agent >= 0) {
            in.agent = budget_scope_name(b, agent);
            in.team = budget_scope_at_level(b, agent, CONF_LEVEL_TEAM);
            in.department = budget_scope_at_level(b, agent, CONF_LEVEL_DEPARTMENT);
            in.sticky = route_sticky(in.agent);
            const struct conf_policy *p = policy_of(c, agent);
            if (p != NULL) {
                in.prefer_cost = p->prefer_cost;
                in.max_latency_ms = p->max_latency_ms;
            }
            if (l != NULL) {
                struct tightest t = {.b = b, .used = -1};
                for (int s = agent; s >= 0 && t.npath < 8; s = budget_scope_parent(b, s))
                    t.path[t.npath++] = s;
                budget_each(b, now, 0, on_view, &t);
                in.budget_used = t.used;
                if (t.used >= 0)
                    snprintf(budget_buf, sizeof(budget_buf),
                             "%.1f%% used of the tightest budget on the path (%s), from the "
                             "ledger %s (spend settled; a running gate also counts requests "
                             "under way)",
                             t.used * 100, t.what, c->ledger_path);
                else
                    snprintf(budget_buf, sizeof(budget_buf),
                             "no budget on the agent's path (ledger %s)", c->ledger_path);
                budget_note = budget_buf;
            } else {
                snprintf(budget_buf, sizeof(budget_buf), "not known (%s%s)",
                         c->ledger_path ? "cannot read the ledger: " : "no ledger is configured",
                         c->ledger_path ? lerr : "");
                budget_note = budget_buf;
            }
        }
    }

    printf("request: ");
    clitext_put(stdout, file);
    printf(" (%s%s)\n", x.api->name, guessed ? ", guessed from the body; --api sets it" : "");
    printf("model asked for: ");
    clitext_put(stdout, x.asked);
    putchar('\n');
    if (in.agent != NULL) {
        printf("agent: ");
        clitext_put(stdout, in.agent);
        printf(" (team %s, department %s)", in.team ? in.team : "-",
               in.department ? in.department : "-");
        printf(", policy: prefer_cost %s, max_latency_ms ", in.prefer_cost ? "yes" : "no");
        if (in.max_latency_ms >= 0)
            printf("%lld\n", (long long)in.max_latency_ms);
        else
            printf("none\n");
    } else {
        printf("agent: not known (%s): agent, team and department rules do not match; canary "
               "seed 0 (the gate draws one per request)\n",
               c->nscopes == 0 ? "the config declares no org" : "no --key");
    }
    printf("budget: %s\n", in.agent ? budget_note : "not known (no agent)");
    int64_t k = count(&x, NULL);
    if (k >= 0)
        printf("input tokens: %lld (as the rules count them)\n", (long long)k);
    else
        printf("input tokens: not known (the body could not be counted)\n");
    if (oc.value >= 0)
        printf("output cap: %lld (the request's)\n", (long long)oc.value);
    else
        printf("output cap: none in the request\n");
    printf("health: not known here (every target taken as healthy)\n");
    if (label != NULL)
        in.label = label;

    struct route_decision d;
    enum route_rc r = route_decide(&in, &d, &trace);
    if (r == ROUTE_NEED_LABEL) {
        const struct conf_rule *cr = &c->routing.rules[d.label_rule];
        int ci = c->routing.classifier;
        printf("classifier: rule %s would ask the classifier (%s) for a label of the last user "
               "message; no --label given: taken as no label\n",
               cr->name, ci >= 0 ? c->models[ci].name : "none");
        in.label = "";
        route_trace_free(&trace);
        r = route_decide(&in, &d, &trace);
    } else if (label != NULL) {
        printf("classifier: label '");
        clitext_put(stdout, label);
        printf("' (--label)\n");
    }
    printf("decision:\n");
    put_trace(&trace);
    if (r != ROUTE_OK) {
        static const char *const answer[] = {"", "", "404", "400", "503", "400"};
        printf("result: the gate would answer %s: ", answer[r]);
        clitext_put(stdout, d.why);
        putchar('\n');
        rc = 1;
        goto out;
    }
    const struct route_cand *t = &d.cand[0];
    printf("rule: %s\n", d.rule_name ? d.rule_name : "none");
    printf("tier: %s\n", d.tier >= 0 ? c->routing.tiers[d.tier].name : "none (a target)");
    printf("target: %s (provider %s%s)\n", t->model->name, t->model->provider->name,
           t->translate ? ", translated" : "");
    printf("candidates:");
    for (int i = 0; i < d.ncand; i++)
        printf("%s %s", i ? "," : "", d.cand[i].model->name);
    printf(" (the gate tries %d at most)\n", c->routing.attempts);
    if (d.max_output_tokens >= 0)
        printf("output cap: %lld (the rule's)\n", (long long)d.max_output_tokens);
    if (d.rewrite_model)
        printf("rewrite_model: answers name %s\n", x.asked);

    int64_t out_chosen = oc.value, out_asked = oc.value >= 0 ? oc.value : 256;
    if (d.max_output_tokens >= 0 && (out_chosen < 0 || d.max_output_tokens < out_chosen))
        out_chosen = d.max_output_tokens;
    if (out_chosen < 0)
        out_chosen = 256;
    put_cost("cost at ", t->model, count(&x, t->model), out_chosen);
    struct conf_dest tmp;
    const struct conf_dest *ad = conf_find_alias(c, x.asked, &tmp);
    const struct conf_model *am = ad ? NULL : conf_find_model(c, x.asked);
    const char *against = "the model asked for";
    if (ad != NULL && !ad->down) {
        /* an alias: without the rules it would go to its own destination's first target */
        if (ad->target >= 0)
            am = &c->models[ad->target];
        else if (ad->tier >= 0 && c->routing.tiers[ad->tier].ntargets > 0)
            am = &c->models[c->routing.tiers[ad->tier].targets[0]];
        against = "the alias's own destination";
    }
    if (am != NULL) {
        printf("cost at %s, ", against);
        put_cost("", am, count(&x, am), out_asked);
        double a = cost_at(am, count(&x, am), out_asked);
        double ch = cost_at(t->model, count(&x, t->model), out_chosen);
        if (a > 0 && ch >= 0)
            printf("saving: $%.6f (%.1f%%)\n", a - ch, 100.0 * (a - ch) / a);
    } else {
        printf("cost at the model asked for: n/a (");
        clitext_put(stdout, x.asked);
        printf(" is an alias)\n");
    }
    printf("(output estimated at %s)\n",
           oc.value >= 0 || d.max_output_tokens >= 0 ? "the cap" : "256 tokens: no cap is set");
    rc = 0;
out:
    route_trace_free(&trace);
    budget_book_free(b);
    ledger_close(l);
    cJSON_Delete(body);
    free(text);
    conf_unref(c);
    return rc;
}
