/*
 * conf: the gate's configuration, loaded from YAML into one immutable snapshot.
 *
 * A snapshot is shared by every worker thread and never changes once loaded; it is
 * refcounted so that a reload can swap in a new one while requests still hold the old.
 */
#ifndef TG_CONF_H
#define TG_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conftz.h"

enum conf_format {
    CONF_FMT_OPENAI = 0,
    CONF_FMT_ANTHROPIC = 1,
};

struct conf_provider {
    char *name;
    char *base_url;      /* as written, e.g. https://api.openai.com/v1 */
    enum conf_format format;
    int tls;             /* 1 for https */
    char *host;          /* host name or address literal, no brackets */
    int port;
    char *host_header;   /* value of Host: host, or host:port for a non-default port */
    char *path_prefix;   /* base URL path without a trailing slash, "" for none */
    char *api_key_env;   /* name of the environment variable, or NULL */
    char *api_key;       /* its value at load time, or NULL: clients' keys pass through */
    int index;           /* position in conf.providers */
};

/* USD per million tokens, as written; -1 when not given. */
struct conf_price {
    double input, output, cached_input, cache_write;
    double cache_write_1h; /* a 1-hour prompt-cache write (Anthropic): 2 x input unless set;
                            * cache_write is the 5-minute write's price */
    int set;
};

struct conf_model {
    char *name;          /* exact name, or a prefix when wildcard is set ("gpt-*") */
    int wildcard;
    struct conf_provider *provider;
    char *upstream_model; /* name sent upstream, or NULL to keep the client's */
    char *encoding;       /* tokenizer encoding, or NULL for the default by model family */
    double calibration;   /* factor on approximate counts (Anthropic); 1.0 unless set */
    struct conf_price price;
    long max_output_tokens; /* the model's own cap on output, or 0 for the default by family */
    long context_window;    /* input + output tokens the model takes, 0 when not known (no guard) */
    long cache_min_tokens;  /* the shortest prefix the provider caches (Anthropic: 1024, 2048 or
                             * 4096 by family), 0 for the default by family */
    int index;              /* position in conf.models */
};

/* ---- routing (conf/confroute.c): tiers, aliases, rules, fallbacks, health, classifier ----- */

/* A tier: an ordered list of targets, each a model entry (which names its provider). Tiers
 * are ranked in the order the file lists them, cheapest first: "up" is the next one listed. */
struct conf_tier {
    char *name;
    int *targets;  /* indices in conf.models (exact entries, never wildcards), in order */
    int ntargets;
    int line;
};

/* What an alias or a rule's action sends a request to: a tier or one target. */
struct conf_dest {
    int tier;   /* index in conf.tiers, or -1 */
    int target; /* index in conf.models, or -1 */
    int down;   /* "tier: down": the tier the later rules choose, one below (budget pressure) */
};

/* A model name a client may ask for that is not a model: "auto", "fast". "tier:NAME" names each
 * tier without being declared. */
struct conf_alias {
    char *name;
    struct conf_dest dest;
};

/* Text conditions over the last user message or the system prompt: a PCRE2 regex (compiled
 * at load, UTF mode) and/or keywords (case-insensitive, whole words); either one matching is
 * a match. */
struct conf_text_match {
    char *regex;   /* as written, or NULL */
    void *code;    /* pcre2_code_8 *, or NULL */
    char **keywords;
    int nkeywords;
};

/* A header condition: the header's value equals value (case-sensitive), or matches regex. */
struct conf_header_match {
    char *name;    /* lower case */
    char *value;   /* or NULL */
    char *regex;
    void *code;
};

/* One share of a canary split: a destination and its percent (the shares sum to 100). */
struct conf_split {
    struct conf_dest dest;
    int percent;
};

enum conf_tristate { CONF_ANY = -1, CONF_NO = 0, CONF_YES = 1 };

/* A routing rule: every condition that is set must hold (an empty match always holds). */
struct conf_rule {
    char *name;
    int line;
    /* match */
    char **models;      /* the model or alias asked for */
    int nmodels;
    char **agents, **teams, **departments;
    int nagents, nteams, ndepartments;
    struct conf_header_match *headers;
    int nheaders;
    int64_t input_min, input_max;       /* counted input tokens, -1 for no bound */
    int64_t messages_min, messages_max; /* messages in the request, -1 for no bound */
    enum conf_tristate tools, images, json_output;
    struct conf_text_match last_user, system;
    int budget_above;   /* percent of the tightest budget on the request's path, -1 none */
    char **labels;      /* the classifier's labels that match; none: no classification */
    int nlabels;
    /* action: one of dest or split */
    struct conf_dest dest;
    struct conf_split *split;
    int nsplit;
    int64_t max_output_tokens; /* -1 none */
    int rewrite_model;  /* answers name the model the client asked for, not the one served */
    int tier_up;        /* fallback may go on to the next tier up: -1 as routing.tier_up */
};

struct conf_routing {
    struct conf_tier *tiers;
    int ntiers;
    struct conf_alias *aliases;
    int naliases;
    struct conf_rule *rules;
    int nrules;
    int needs_budget;      /* a rule reads budget_above */
    int needs_count;       /* a rule reads input_tokens */
    /* fallback */
    int attempts;          /* targets tried per request, the first included: 3 */
    int tier_up;           /* fallback goes on to the next tier up: 0 */
    int64_t retry_after_max_ms; /* a target's retry-after is honoured up to this: 60 s */
    /* circuit breaker, per target */
    int breaker_failures;  /* failures in a row that open it: 5 */
    int breaker_error_pct; /* ... or this percent of errors in the window: 50 */
    int breaker_min_requests; /* ... among at least this many: 20 */
    int64_t breaker_window_ms; /* 30 s */
    int64_t breaker_cooldown_ms; /* open this long, then one probe: 15 s */
    /* the classifier: a target asked for a label of the last user message */
    int classifier;        /* index in conf.models, -1 none */
    int64_t classifier_timeout_ms; /* 300 */
    int64_t classifier_ttl_ms;     /* labels cached this long: 10 min */
    int classifier_max_entries;    /* labels cached, at most: 10000 */
};

/* ---- identities and budgets (conf/confid.c) ----------------------------------------------- */

enum conf_level { CONF_LEVEL_ORG, CONF_LEVEL_DEPARTMENT, CONF_LEVEL_TEAM, CONF_LEVEL_AGENT };

enum conf_window {
    CONF_WIN_MINUTE,
    CONF_WIN_HOUR,
    CONF_WIN_DAY,
    CONF_WIN_MONTH,
    CONF_WIN_TOTAL, /* prepaid: never resets */
    CONF_WIN__COUNT
};

/* A budget on one window of a scope; -1 for no limit of that kind. */
struct conf_limit {
    int64_t tokens;
    int64_t nusd; /* nano-dollars */
};

/* An http:// or https:// URL taken apart: a provider's base_url, the alert webhook. */
struct conf_url {
    int tls;           /* 1 for https */
    char *host;        /* host name or address literal, no brackets */
    int port;
    char *host_header; /* the Host header: host, or host:port for a port that is not the default */
    char *path;        /* the path as written, "" for none */
};

/* Takes the URL u apart into out (whose strings are malloc'd; conf_url_free frees them).
 * Returns NULL, or why u is not a URL the gate can use ("has a bad port"), after which out
 * holds nothing to free. */
const char *conf_parse_url(const char *u, struct conf_url *out);
void conf_url_free(struct conf_url *u);

/* ---- caches (conf/confcache.c) ------------------------------------------------------------ */

enum conf_cache_mode {
    CONF_CACHE_AUTO = 0, /* requests with temperature 0, and those whose header opts in */
    CONF_CACHE_ON,       /* every request that can be cached (and not opted out) */
    CONF_CACHE_OFF,      /* none, whatever the header says */
};

/* A policy's caching: what a scope's agents get (inherited as the rest of a policy is). Each
 * member has its default when the policy does not say. */
struct conf_policy_cache {
    enum conf_cache_mode responses; /* responses: auto */
    enum conf_level scope;          /* entries (responses, tool results) shared within: agent */
    int64_t ttl_ms;                 /* a response entry lives: 10 min */
    int prompt_anthropic;           /* prompt.anthropic: breakpoints placed on Anthropic
                                     * targets when the client placed none: 0 */
    int prompt_ttl_1h;              /* prompt.ttl: 5m (0) or 1h (1) */
    int prompt_openai_key;          /* prompt.openai_key: prompt_cache_key per scope: 0 */
    enum conf_level prompt_scope;   /* prompt.scope: the scope the key names: agent */
};

/* The gate's caches: their caps, shared by all tenants' entries (which never cross scopes). */
struct conf_cache {
    int responses;               /* cache.responses.enabled: 1 */
    size_t max_bytes;            /* cache.responses.max_bytes: 256 MiB, LRU */
    size_t max_entry_bytes;      /* cache.responses.max_entry_bytes: 4 MiB: larger not stored */
    int64_t max_ttl_ms;          /* cache.responses.max_ttl: 24 h: a policy's ttl is cut to it */
    int prefix_counts;           /* cache.prefix_counts.enabled: 1 */
    int64_t prefix_max_entries;  /* cache.prefix_counts.max_entries: 1,000,000, LRU */
    size_t tools_max_bytes;      /* cache.tools.max_bytes: 64 MiB (tool results, MCP lists) */
    size_t tools_max_entry_bytes; /* cache.tools.max_entry_bytes: 1 MiB */
    char **tools;                /* cache.tools.ttl: the tools /v1/tool-cache takes (the
                                  * allowlist), with their TTLs */
    int64_t *tools_ttl_ms;
    int ntools;
};

/* A policy's cache settings when no policy says anything (every member at its default). */
const struct conf_policy_cache *conf_policy_cache_defaults(void);

/* ---- MCP servers (conf/confmcp.c) ---------------------------------------------------------- */

struct conf_mcp_tool {
    char *name;
    int64_t ttl_ms;              /* tools/call results cached this long (on the allowlist) */
};

struct conf_mcp_team {
    char *team;                  /* a team's name */
    char **tools;                /* the only tools it sees (the others are hidden from it) */
    int ntools;
};

struct conf_mcp_server {
    char *name;                  /* /mcp/{name} */
    char *url;                   /* its streamable HTTP endpoint, as written */
    struct conf_url u;           /* ... taken apart */
    char *api_key_env;           /* the gate's credential for it: sent as Authorization:
                                  * Bearer, never shown to agents; NULL for none */
    char *api_key;               /* its value at load time */
    struct conf_mcp_tool *tools; /* the cache allowlist, with TTLs: none by default */
    int ntools;
    struct conf_mcp_team *teams; /* per-team allowlists of visible tools */
    int nteams;
    int64_t list_ttl_ms;         /* tools/list cached this long: 5 min */
    int64_t timeout_ms;          /* an answer's first byte: timeouts.upstream_first_byte */
    struct conf_provider prov;   /* the server as the upstream pools see it ("mcp:NAME",
                                  * index -1; its strings are u's), confmcp.c */
};

struct conf_policy {
    char *name;
    int64_t min_per_agent, max_per_agent; /* tokens per policy window, per agent; -1 none */
    enum conf_window window;              /* the window of the allocation: day unless set */
    int64_t max_per_request;              /* input + output tokens; -1 none */
    int downgrade;                        /* on_exhaustion: downgrade (rejects until routing) */
    int max_retries;                      /* -1 none */
    int loop_detection;
    int64_t task_max_nusd, task_max_requests; /* per x-tokengate-task id; -1 none */
    int prefer_cost;                      /* routing: the cheapest target of the tier ... */
    int64_t max_latency_ms;               /* ... whose recent p90 is under this; -1 none */
    struct conf_policy_cache cache;       /* caching (conf/confcache.c) */
};

/* One node of the org tree: the org, a department, a team or an agent. */
struct conf_scope {
    char *name;
    enum conf_level level;
    int parent;                 /* index in conf.scopes, -1 for the org */
    int policy;                 /* index in conf.policies set here, -1 to inherit */
    struct conf_limit limits[CONF_WIN__COUNT];
};

/* A virtual key from the config: only its SHA-256 is kept. */
struct conf_key {
    unsigned char hash[32];
    int agent;                  /* index in conf.scopes */
    int line;
};

struct conf_admin {
    char *host;                 /* NULL: no admin listener */
    int port;
    char *token_env;            /* variable holding the admin token */
    char *token_file;           /* else a file holding it, made with a random token if absent */
};

struct conf_alerts {
    int thresholds[8];          /* percent of a budget, ascending */
    int nthresholds;
    char *webhook;              /* http:// or https:// URL to POST alerts to, or NULL */
    struct conf_url hook;       /* webhook taken apart */
};

struct conf {
    char *path;

    char *listen_host;
    int listen_port;
    int workers;         /* resolved: "auto" becomes the number of cores */
    char *tls_cert;      /* listener TLS, both or neither */
    char *tls_key;

    char *request_log;   /* JSON lines path, or NULL for none */

    size_t max_header_bytes;
    int max_headers;
    size_t max_body_bytes;
    size_t max_response_bytes;
    size_t max_request_memory;   /* a request's arena while its body is parsed and checked */
    size_t max_memory_in_flight; /* bodies and arenas of all requests in flight */

    /* milliseconds */
    int64_t client_header_timeout;
    int64_t client_idle_timeout;
    int64_t client_body_timeout; /* from the end of a request's head to the end of its body */
    int64_t upstream_connect_timeout;
    int64_t upstream_first_byte_timeout;
    int64_t stream_idle_timeout;
    int64_t client_write_timeout; /* a client that takes nothing of its answer this long */

    char *ca_file;       /* NULL: the system store */
    int pool_max_idle;   /* idle upstream connections kept per provider per worker */
    int upstream_max_connections; /* open (busy or idle) per provider per worker */
    int upstream_max_waiting;     /* requests queued for a connection, per provider per worker */

    struct conf_provider *providers;
    int nproviders;
    struct conf_model *models;
    int nmodels;

    /* identities and budgets: nscopes is 0 when the config declares no org (an open gate) */
    struct conf_scope *scopes;
    int nscopes;
    struct conf_key *keys;
    int nkeys;
    struct conf_policy *policies;
    int npolicies;
    int anonymous;              /* requests without a key are allowed, as agent "anonymous" */
    int anonymous_scope;        /* its index in scopes, -1 when not allowed */
    char *timezone;             /* for calendar windows; NULL for UTC */
    struct conf_tz *tz;         /* that zone, read at load (conf/conftz.h); NULL for UTC */
    char *ledger_path;          /* NULL: no ledger */
    int ledger_sync;            /* enum ledger_sync */
    int ledger_fail_open;       /* ledger.on_failure: open (admit while records cannot be
                                 * committed); 0, the default, is closed (503) */
    struct conf_admin admin;
    struct conf_alerts alerts;
    struct conf_routing routing;
    struct conf_cache cache;
    struct conf_mcp_server *mcp;
    int nmcp;

    int refs;
};

/*
 * Loads and validates the YAML file at path. Returns a snapshot with one reference, or NULL
 * with a message "FILE:LINE: reason" (or "FILE: reason") written into err.
 */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/*
 * Splits a listen address "host:port" (or "[v6]:port") into a malloc'd host and a port.
 * Returns 0, or -1 when it is not of that form or the host is not a numeric IPv4 or IPv6
 * address: names such as localhost are refused here, where --check sees them, as the
 * listener would refuse them at start (and -1 when out of memory).
 */
int conf_split_host_port(const char *s, char **host, int *port);

/* The MCP server named by the len bytes at name (a path segment), or NULL (confmcp.c). */
const struct conf_mcp_server *conf_find_mcp(const struct conf *c, const char *name, size_t len);

/* Same as conf_load, from a string; name stands for the file in error messages. */
struct conf *conf_load_string(const char *text, size_t len, const char *name, char *err,
                              size_t errlen);

/* Takes and drops a reference; the snapshot is freed when the last one goes. */
struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf *c);

/*
 * Finds the model entry for a model name: an exact entry first, then the longest wildcard
 * prefix. Returns NULL when no entry matches.
 */
const struct conf_model *conf_find_model(const struct conf *c, const char *name);

/*
 * Finds a scope by its name as the admin API and the CLI write it: "org", "department:NAME",
 * "team:NAME", "agent:NAME" (or the bare name of the org). Returns its index or -1.
 */
int conf_find_scope(const struct conf *c, const char *scope);

/* Finds a tier by name, an alias by name ("tier:NAME" included: it is made then, into *tmp),
 * and returns NULL / -1 when there is none. */
int conf_find_tier(const struct conf *c, const char *name);
const struct conf_dest *conf_find_alias(const struct conf *c, const char *name,
                                        struct conf_dest *tmp);

/* Writes a scope's name as conf_find_scope reads it ("team:search") into buf. */
const char *conf_scope_label(const struct conf *c, int scope, char *buf, size_t cap);

/* "org", "department", "team", "agent"; and back (-1 when unknown). */
const char *conf_level_name(enum conf_level lv);
int conf_level_parse(const char *s);

/* "minute", "hour", "day", "month", "total"; and back (-1 when unknown). */
const char *conf_window_name(enum conf_window w);
int conf_window_parse(const char *s);

/* Parses "10s", "250ms", "2m", "1h" or a bare number of seconds. Returns -1 when malformed. */
int64_t conf_parse_duration_ms(const char *s);

/* Parses "64KiB", "32MiB", "1GiB", "512KB" or a bare number of bytes. Returns -1 when malformed. */
int64_t conf_parse_size(const char *s);

#endif
