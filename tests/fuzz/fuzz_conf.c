/*
 * libFuzzer target: the config loader (conf/conf.c, conf/confid.c) fed arbitrary bytes as the
 * YAML file. What must hold for any input: no crash, leak or sanitizer report (libFuzzer's leak
 * check runs under ASan); a refusal says where, "fuzz.yaml:LINE: reason" with a line inside the
 * input (or "fuzz.yaml: the file is empty" for a file with no document), never an empty
 * message; an accepted config is whole (every model has a provider, every scope a valid parent
 * and a level below its parent's), no mapping in it holds a key twice (libyaml takes that, and
 * the loader would read one and drop the other), and it is freed by its one reference.
 *
 * Seeds: tests/fuzz/seeds-conf (the configs of conf/ and what the tests write).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.yaml"

/* Lines in the input, as libyaml counts them (LF, CR, CRLF; and NEL, LS, PS in UTF-8). */
static size_t count_lines(const uint8_t *d, size_t n)
{
    size_t lines = 1;

    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\n' || (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n')))
            lines++;
        else if (d[i] == 0xc2 && i + 1 < n && d[i + 1] == 0x85)
            lines++;
        else if (d[i] == 0xe2 && i + 2 < n && d[i + 1] == 0x80 &&
                 (d[i + 2] == 0xa8 || d[i + 2] == 0xa9))
            lines++;
    }
    return lines;
}

static void check_refusal(const char *err, const uint8_t *data, size_t size)
{
    size_t nl = strlen(NAME);
    char *end;

    if (strncmp(err, NAME ":", nl + 1) != 0)
        abort();
    if (strcmp(err + nl, ": the file is empty") == 0)
        return;
    unsigned long line = strtoul(err + nl + 1, &end, 10);
    if (end == err + nl + 1 || line < 1 || end[0] != ':' || end[1] != ' ' || end[2] == '\0')
        abort();
    /* libyaml may point one line past the last one (an error at the end of the input) */
    if (line > count_lines(data, size) + 1)
        abort();
}

/* A destination names a tier or an exact model entry, or is "down". */
static void check_dest(const struct conf *c, const struct conf_dest *d)
{
    if (d->down)
        return;
    if ((d->tier >= 0) == (d->target >= 0) || d->tier >= c->routing.ntiers ||
        d->target >= c->nmodels || (d->target >= 0 && c->models[d->target].wildcard))
        abort();
}

/* Tiers, aliases and rules of an accepted config point only at what it declares. */
static void check_routing(const struct conf *c)
{
    const struct conf_routing *r = &c->routing;
    struct conf_dest tmp;

    for (int i = 0; i < r->ntiers; i++) {
        if (r->tiers[i].ntargets < 1 || conf_find_tier(c, r->tiers[i].name) != i)
            abort();
        for (int j = 0; j < r->tiers[i].ntargets; j++)
            check_dest(c, &(struct conf_dest){-1, r->tiers[i].targets[j], 0});
    }
    for (int i = 0; i < r->naliases; i++) {
        if (conf_find_alias(c, r->aliases[i].name, &tmp) != &r->aliases[i].dest)
            abort();
        check_dest(c, &r->aliases[i].dest);
    }
    for (int i = 0; i < r->nrules; i++) {
        const struct conf_rule *u = &r->rules[i];
        int sum = 0;
        if (u->name == NULL || (u->nsplit > 0) == (u->dest.tier >= 0 || u->dest.target >= 0 ||
                                                   u->dest.down))
            abort();
        if (u->nsplit == 0)
            check_dest(c, &u->dest);
        for (int j = 0; j < u->nsplit; j++) {
            check_dest(c, &u->split[j].dest);
            sum += u->split[j].percent;
        }
        if ((u->nsplit > 0 && sum != 100) || (u->nlabels > 0 && r->classifier < 0))
            abort();
    }
}

static void check_config(const struct conf *c)
{
    for (int i = 0; i < c->nmodels; i++)
        if (c->models[i].provider == NULL || c->models[i].name == NULL)
            abort();
    for (int i = 0; i < c->nscopes; i++) {
        const struct conf_scope *s = &c->scopes[i];
        if (s->name == NULL)
            abort();
        if (i == 0 ? s->parent != -1 : s->parent < 0 || s->parent >= c->nscopes)
            abort();
        if (i > 0 && c->scopes[s->parent].level >= s->level)
            abort();
        if (s->policy < -1 || s->policy >= c->npolicies)
            abort();
        (void)conf_find_scope(c, s->name);
    }
    for (int i = 0; i < c->nkeys; i++)
        if (c->keys[i].agent < 0 || c->keys[i].agent >= c->nscopes)
            abort();
    for (int i = 0; i < c->nmodels; i++)
        if (conf_find_model(c, c->models[i].name) == NULL && !c->models[i].wildcard)
            abort();
    check_routing(c);
}

/* Whether some mapping of the document holds one scalar key twice (pairwise; mappings of more
 * than 4096 pairs are left out, to keep a run fast). */
static int has_duplicate_key(const uint8_t *data, size_t size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int dup = 0;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, data, size);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_parser_delete(&parser);
        return 0;
    }
    for (yaml_node_t *n = doc.nodes.start; n < doc.nodes.top && !dup; n++) {
        yaml_node_pair_t *a, *b, *top = n->data.mapping.pairs.top;
        if (n->type != YAML_MAPPING_NODE || top - n->data.mapping.pairs.start > 4096)
            continue;
        for (a = n->data.mapping.pairs.start; a < top && !dup; a++) {
            yaml_node_t *ka = yaml_document_get_node(&doc, a->key);
            for (b = a + 1; b < top && !dup; b++) {
                yaml_node_t *kb = yaml_document_get_node(&doc, b->key);
                dup = ka->type == YAML_SCALAR_NODE && kb->type == YAML_SCALAR_NODE &&
                      ka->data.scalar.length == kb->data.scalar.length &&
                      memcmp(ka->data.scalar.value, kb->data.scalar.value,
                             ka->data.scalar.length) == 0;
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return dup;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    struct conf *c;

    err[0] = '\0';
    c = conf_load_string((const char *)data, size, NAME, err, sizeof(err));
    if (c == NULL) {
        check_refusal(err, data, size);
        return 0;
    }
    check_config(c);
    if (has_duplicate_key(data, size))
        abort();
    conf_unref(c);
    return 0;
}
