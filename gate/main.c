/*
 * tokengate: the command-line entry. One binary, with subcommands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gate/util/jsonmem.h"
#include "gate/cli/logscli.h"
#include "gate/cli/routecli.h"
#include "gate/cli/usagecli.h"
#include "gate/reload.h"
#include "gate/server.h"
#include "tokenizer/tokcli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tokengate <command> [options]\n"
               "\n"
               "commands:\n"
               "  serve --config FILE [--listen HOST:PORT] [--workers N] [--check]\n"
               "        run the gate (--check: validate the config and exit)\n"
               "  count [--encoding E | --model M] [--allow-special] [--chat [--json]] [FILE|-]\n"
               "        print the number of tokens (--chat: of an API request body)\n"
               "  encode [--encoding E | --model M] [--allow-special] [--jsonl] [FILE|-]\n"
               "        print the token ids, separated by spaces\n"
               "  decode [--encoding E | --model M] [FILE|-]\n"
               "        turn token ids back into text\n"
               "  usage [--config FILE] [--db PATH] [--level L] [--scope S] [--window W] [--all]\n"
               "        [--format table|json|csv]\n"
               "        print spend against budgets by level, scope and window\n"
               "  logs [--db PATH | --config FILE] [--agent A] [--team T] [--department D]\n"
               "       [--model M] [--status CODE|2xx|4xx|5xx] [--since T] [--until T] [--limit N]\n"
               "       [--format table|json|csv]\n"
               "        list the ledger's request records, newest first\n"
               "  route --explain REQUEST.json [--config FILE] [--key K] [--label L]\n"
               "        [--api API] [--header NAME:VALUE]...\n"
               "        print the routing decision for a request, without sending it\n"
               "  version\n"
               "        print the version\n");
}

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: tokengate serve --config FILE [--listen HOST:PORT] [--workers N] [--check]\n"
               "  --listen   override listen: (a numeric address; port 0 picks a free port)\n"
               "  --workers  override workers: (1 to 256)\n"
               "  --check    validate the config, as serve would read it, and exit\n");
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = NULL, *listen = NULL, *workers = NULL;
    int check = 0;
    char err[1024];
    struct conf *c;
    struct gate_overrides ov = {0}; /* applied again on each reload */
    char *host = NULL;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            workers = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tokengate serve: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "tokengate serve: --config FILE is required\n");
        return 2;
    }
    c = conf_load(path, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "tokengate: invalid config: %s\n", err);
        return 1;
    }
    if (listen != NULL) {
        if (conf_split_host_port(listen, &host, &ov.listen_port) < 0) {
            fprintf(stderr,
                    "tokengate serve: --listen must be HOST:PORT with a numeric address, such as "
                    "127.0.0.1:8080 or [::1]:8080, not '%s' (names are not resolved)\n",
                    listen);
            conf_unref(c);
            return 2;
        }
        ov.listen_host = host;
    }
    if (workers != NULL) {
        char *end;
        long n = strtol(workers, &end, 10);
        if (*end != '\0' || n < 1 || n > 256) {
            fprintf(stderr, "tokengate serve: --workers must be from 1 to 256\n");
            conf_unref(c);
            free(host);
            return 2;
        }
        ov.workers = (int)n;
    }
    if (gate_overrides_apply(c, &ov) < 0) {
        fprintf(stderr, "tokengate: out of memory\n");
        conf_unref(c);
        free(host);
        return 1;
    }
    if (check) {
        printf("%s: configuration is valid (%d providers, %d models)\n", path, c->nproviders,
               c->nmodels);
        conf_unref(c);
        free(host);
        return 0;
    }
    int rc = gate_server_run(c, &ov);
    conf_unref(c);
    free(host);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    jsonmem_init();
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "count") == 0)
        return tok_cmd_count(argc - 2, argv + 2);
    if (strcmp(argv[1], "encode") == 0)
        return tok_cmd_encode(argc - 2, argv + 2);
    if (strcmp(argv[1], "decode") == 0)
        return tok_cmd_decode(argc - 2, argv + 2);
    if (strcmp(argv[1], "usage") == 0)
        return gate_cmd_usage(argc - 2, argv + 2);
    if (strcmp(argv[1], "logs") == 0)
        return gate_cmd_logs(argc - 2, argv + 2);
    if (strcmp(argv[1], "route") == 0)
        return gate_cmd_route(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0 && argc > 2 &&
        (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        printf("usage: tokengate version\n  print the version\n");
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("tokengate %s\n", TG_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tokengate: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
