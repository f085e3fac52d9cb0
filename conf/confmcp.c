/*
 * confmcp: the `mcp:` section, the MCP servers the gate proxies at /mcp/{name}. See conf.h
 * (struct conf_mcp_server) and conf-int.h. The section's node is kept when the top level is
 * read and parsed once the org tree is (a team allowlist names teams of the org).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"

/* a server's name is one path segment of /mcp/{name} */
#define CONFMCP_NAME_MAX 64
#define CONFMCP_MAX_SERVERS 64
#define CONFMCP_MAX_TOOLS 1024

int confmcp_load_key(struct loader *l, const char *k, const yaml_node_t *v)
{
    if (strcmp(k, "mcp") != 0)
        return 1;
    l->mcp = v;
    return 0;
}

static int plain_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFMCP_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

static size_t npairs(const yaml_node_t *map)
{
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static int team_exists(const struct conf *c, const char *name)
{
    for (int i = 0; i < c->nscopes; i++)
        if (c->scopes[i].level == CONF_LEVEL_TEAM && strcmp(c->scopes[i].name, name) == 0)
            return 1;
    return 0;
}

/* tools: {name: ttl, ...}: the cache allowlist */
static int load_tools(struct loader *l, const yaml_node_t *v, struct conf_mcp_server *s)
{
    if (conf_want_mapping(l, v, "tools") < 0)
        return -1;
    if (npairs(v) > CONFMCP_MAX_TOOLS)
        return conf_fail(l, v, "mcp server '%s': tools: more than %d tools", s->name,
                         CONFMCP_MAX_TOOLS);
    s->tools = calloc(npairs(v) + 1, sizeof(*s->tools));
    if (s->tools == NULL)
        return conf_fail(l, v, "mcp server '%s': out of memory", s->name);
    FOR_PAIRS(l, v, pair)
    {
        const char *name = conf_scalar(conf_node(l, pair->key));
        yaml_node_t *tv = conf_node(l, pair->value);
        struct conf_mcp_tool *t = &s->tools[s->ntools];
        if (name == NULL || *name == '\0')
            return conf_fail(l, conf_node(l, pair->key),
                             "mcp server '%s': tools: a tool needs a plain name", s->name);
        if ((t->name = strdup(name)) == NULL)
            return conf_fail(l, tv, "mcp server '%s': out of memory", s->name);
        s->ntools++;
        if (conf_want_duration(l, tv, name, &t->ttl_ms) < 0)
            return -1;
    }
    return 0;
}

/* teams: {team: [tool, ...], ...}: what each listed team sees */
static int load_teams(struct loader *l, const yaml_node_t *v, struct conf_mcp_server *s)
{
    if (conf_want_mapping(l, v, "teams") < 0)
        return -1;
    s->teams = calloc(npairs(v) + 1, sizeof(*s->teams));
    if (s->teams == NULL)
        return conf_fail(l, v, "mcp server '%s': out of memory", s->name);
    FOR_PAIRS(l, v, pair)
    {
        const yaml_node_t *kn = conf_node(l, pair->key);
        const char *team = conf_scalar(kn);
        yaml_node_t *list = conf_node(l, pair->value);
        struct conf_mcp_team *t = &s->teams[s->nteams];
        if (team == NULL || *team == '\0')
            return conf_fail(l, kn, "mcp server '%s': teams: a team needs a plain name", s->name);
        if (!team_exists(l->c, team))
            return conf_fail(l, kn, "mcp server '%s': teams: no team named '%s' in the org",
                             s->name, team);
        if ((t->team = strdup(team)) == NULL)
            return conf_fail(l, kn, "mcp server '%s': out of memory", s->name);
        s->nteams++;
        if (list->type != YAML_SEQUENCE_NODE)
            return conf_fail(l, list, "mcp server '%s': teams: '%s' must be a list of tool names",
                             s->name, team);
        size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
        if (n > CONFMCP_MAX_TOOLS)
            return conf_fail(l, list, "mcp server '%s': teams: '%s' lists more than %d tools",
                             s->name, team, CONFMCP_MAX_TOOLS);
        t->tools = calloc(n + 1, sizeof(*t->tools));
        if (t->tools == NULL)
            return conf_fail(l, list, "mcp server '%s': out of memory", s->name);
        FOR_ITEMS(l, list, item)
        {
            yaml_node_t *in = conf_node(l, *item);
            const char *tool = conf_scalar(in);
            if (tool == NULL || *tool == '\0')
                return conf_fail(l, in, "mcp server '%s': teams: '%s': a tool needs a plain name",
                                 s->name, team);
            if ((t->tools[t->ntools] = strdup(tool)) == NULL)
                return conf_fail(l, in, "mcp server '%s': out of memory", s->name);
            t->ntools++;
        }
    }
    return 0;
}

/* The server as the gate's upstream pools see it: a provider named "mcp:NAME" whose strings
 * are the URL's (owned by s->u, never freed through prov). */
static void make_provider(struct conf_mcp_server *s, char *pname)
{
    s->prov.name = pname;
    s->prov.base_url = s->url;
    s->prov.format = CONF_FMT_OPENAI;
    s->prov.tls = s->u.tls;
    s->prov.host = s->u.host;
    s->prov.port = s->u.port;
    s->prov.host_header = s->u.host_header;
    s->prov.path_prefix = s->u.path;
    s->prov.index = -1; /* not in conf.providers: poolset_get finds it by name */
}

static int load_server(struct loader *l, const char *name, const yaml_node_t *map,
                       struct conf_mcp_server *s)
{
    const yaml_node_t *url_node = map;
    const char *why;
    char pname[CONFMCP_NAME_MAX + 8];

    s->list_ttl_ms = 5 * 60 * 1000;
    s->timeout_ms = l->c->upstream_first_byte_timeout;
    if ((s->name = strdup(name)) == NULL)
        return conf_fail(l, map, "mcp server '%s': out of memory", name);
    if (conf_want_mapping(l, map, name) < 0)
        return -1;
    FOR_PAIRS(l, map, pair)
    {
        const yaml_node_t *kn = conf_node(l, pair->key);
        const char *k = conf_scalar(kn);
        yaml_node_t *v = conf_node(l, pair->value);
        if (k == NULL)
            return conf_fail(l, kn, "mcp server '%s': keys must be plain names", name);
        if (strcmp(k, "url") == 0) {
            if (conf_want_string(l, v, k, &s->url) < 0)
                return -1;
            url_node = v;
        } else if (strcmp(k, "api_key_env") == 0) {
            if (conf_want_string(l, v, k, &s->api_key_env) < 0)
                return -1;
        } else if (strcmp(k, "list_ttl") == 0) {
            if (conf_want_duration(l, v, k, &s->list_ttl_ms) < 0)
                return -1;
        } else if (strcmp(k, "tools") == 0) {
            if (load_tools(l, v, s) < 0)
                return -1;
        } else if (strcmp(k, "teams") == 0) {
            if (load_teams(l, v, s) < 0)
                return -1;
        } else {
            return conf_fail(l, kn,
                             "mcp server '%s': unknown key '%s' (url, api_key_env, list_ttl, "
                             "tools, teams)",
                             name, k);
        }
    }
    if (s->url == NULL)
        return conf_fail(l, map, "mcp server '%s' has no url", name);
    if ((why = conf_parse_url(s->url, &s->u)) != NULL)
        return conf_fail(l, url_node, "mcp server '%s': url %s", name, why);
    if (s->u.path[0] == '\0') {
        /* the request line needs a path */
        free(s->u.path);
        if ((s->u.path = strdup("/")) == NULL)
            return conf_fail(l, url_node, "mcp server '%s': out of memory", name);
    }
    if (s->api_key_env != NULL) {
        const char *key = getenv(s->api_key_env);
        if (key == NULL || *key == '\0')
            return conf_fail(l, map, "mcp server '%s': api_key_env names %s, which is not set",
                             name, s->api_key_env);
        if ((s->api_key = strdup(key)) == NULL)
            return conf_fail(l, map, "mcp server '%s': out of memory", name);
    }
    snprintf(pname, sizeof(pname), "mcp:%s", name);
    char *p = strdup(pname);
    if (p == NULL)
        return conf_fail(l, map, "mcp server '%s': out of memory", name);
    make_provider(s, p);
    return 0;
}

int confmcp_finish(struct loader *l)
{
    const yaml_node_t *v = l->mcp, *servers = NULL;
    struct conf *c = l->c;

    if (v == NULL)
        return 0;
    if (conf_want_mapping(l, v, "mcp") < 0)
        return -1;
    FOR_PAIRS(l, v, pair)
    {
        const yaml_node_t *kn = conf_node(l, pair->key);
        const char *k = conf_scalar(kn);
        if (k == NULL || strcmp(k, "servers") != 0)
            return conf_fail(l, kn, "mcp: unknown key '%s' (servers)", k ? k : "?");
        servers = conf_node(l, pair->value);
    }
    if (servers == NULL)
        return 0;
    if (conf_want_mapping(l, servers, "servers") < 0)
        return -1;
    if (npairs(servers) > CONFMCP_MAX_SERVERS)
        return conf_fail(l, servers, "mcp: servers: more than %d servers", CONFMCP_MAX_SERVERS);
    c->mcp = calloc(npairs(servers) + 1, sizeof(*c->mcp));
    if (c->mcp == NULL)
        return conf_fail(l, servers, "mcp: out of memory");
    FOR_PAIRS(l, servers, pair)
    {
        const yaml_node_t *kn = conf_node(l, pair->key);
        const char *name = conf_scalar(kn);
        if (name == NULL || !plain_name(name))
            return conf_fail(l, kn,
                             "mcp: a server needs a name of 1 to %d letters, digits, '-', '_' "
                             "or '.' (it is a path segment of /mcp/{name})",
                             CONFMCP_NAME_MAX);
        c->nmcp++; /* freed by confmcp_free even when it fails half-read */
        if (load_server(l, name, conf_node(l, pair->value), &c->mcp[c->nmcp - 1]) < 0)
            return -1;
    }
    return 0;
}

void confmcp_free(struct conf *c)
{
    for (int i = 0; i < c->nmcp; i++) {
        struct conf_mcp_server *s = &c->mcp[i];
        free(s->name);
        free(s->url);
        conf_url_free(&s->u);
        free(s->api_key_env);
        if (s->api_key != NULL) {
            memset(s->api_key, 0, strlen(s->api_key)); /* keys do not linger in freed memory */
            free(s->api_key);
        }
        for (int j = 0; j < s->ntools; j++)
            free(s->tools[j].name);
        free(s->tools);
        for (int j = 0; j < s->nteams; j++) {
            for (int k = 0; k < s->teams[j].ntools; k++)
                free(s->teams[j].tools[k]);
            free(s->teams[j].tools);
            free(s->teams[j].team);
        }
        free(s->teams);
        free(s->prov.name);
    }
    free(c->mcp);
    c->mcp = NULL;
    c->nmcp = 0;
}

const struct conf_mcp_server *conf_find_mcp(const struct conf *c, const char *name, size_t len)
{
    for (int i = 0; i < c->nmcp; i++)
        if (strlen(c->mcp[i].name) == len && memcmp(c->mcp[i].name, name, len) == 0)
            return &c->mcp[i];
    return NULL;
}
