/*
 * tokengate-chatbench: the cost of counting the input tokens of one chat request, in process,
 * for bench/tokenizer-bench (process start-up would swamp a `tokengate count --chat` timing).
 *
 * usage: tokengate-chatbench [--seconds S] [--encoding E] FILE...
 *
 * Each FILE is an OpenAI /v1/chat/completions request body. For each: parses it with cJSON and
 * counts it once (untimed, to build the encoding's tables and warm the caches), then times
 * parse + delete in a loop for S/2 seconds and tok_count_request() on one parsed body for S
 * seconds (default 1; each loop runs at least 10 times). Prints one JSON line:
 * {"file","bytes","model","encoding","tokens","parse_runs","parse_us","count_runs","count_us",
 * "total_us"}, the *_us being mean microseconds per call and total_us their sum.
 * The encoding is the model's (tok_encoding_for_model) unless --encoding names one.
 * cJSON allocates with malloc here; the gate parses into its request arena, which costs less.
 * Exits 1 when a file cannot be read, parsed or counted, 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench/benchutil.h"
#include "tokenizer/chat.h"
#include "tokenizer/tok.h"

#define MIN_RUNS 10

/* Measures one request file and prints its line. Returns 0, or 1 after saying why on stderr. */
static int bench_file(const char *path, const char *encoding, double seconds)
{
    size_t len = 0;
    char *text = bench_slurp(path, &len);
    cJSON *body = NULL;
    const cJSON *mv;
    const char *model = NULL;
    char *model_json = NULL; /* the model name as a JSON string, quotes and escapes included */
    const tok_enc *e;
    tok_count_result r;
    int parse_runs = 0, count_runs = 0, rc = 1;
    double start, parse_s, count_s;

    if (text == NULL)
        goto out;
    if ((body = cJSON_ParseWithLength(text, len)) == NULL) {
        fprintf(stderr, "chatbench: %s is not valid JSON\n", path);
        goto out;
    }
    mv = cJSON_GetObjectItem(body, "model");
    if (cJSON_IsString(mv)) {
        model = mv->valuestring;
        model_json = cJSON_PrintUnformatted(mv);
    }
    if (encoding == NULL)
        encoding = tok_encoding_for_model(model);
    if ((e = tok_encoding(encoding)) == NULL) {
        fprintf(stderr, "chatbench: unknown encoding %s\n", encoding);
        goto out;
    }
    if (tok_count_request(e, TOK_API_CHAT, body, model, 1.0, &r) != 0) {
        fprintf(stderr, "chatbench: %s is not a chat request\n", path);
        goto out;
    }

    start = bench_now();
    do {
        cJSON *b = cJSON_ParseWithLength(text, len);

        if (b == NULL) {
            fprintf(stderr, "chatbench: out of memory parsing %s\n", path);
            goto out;
        }
        cJSON_Delete(b);
        parse_runs++;
        parse_s = bench_now() - start;
    } while (parse_s < seconds / 2 || parse_runs < MIN_RUNS);

    start = bench_now();
    do {
        if (tok_count_request(e, TOK_API_CHAT, body, model, 1.0, &r) != 0) {
            fprintf(stderr, "chatbench: counting %s failed\n", path);
            goto out;
        }
        count_runs++;
        count_s = bench_now() - start;
    } while (count_s < seconds || count_runs < MIN_RUNS);

    printf("{\"file\":\"%s\",\"bytes\":%zu,\"model\":%s,\"encoding\":\"%s\",\"tokens\":%llu,"
           "\"parse_runs\":%d,\"parse_us\":%.2f,\"count_runs\":%d,\"count_us\":%.2f,"
           "\"total_us\":%.2f}\n",
           strrchr(path, '/') ? strrchr(path, '/') + 1 : path, len,
           model_json ? model_json : "null", tok_name(e), (unsigned long long)r.tokens, parse_runs,
           parse_s / parse_runs * 1e6, count_runs, count_s / count_runs * 1e6,
           (parse_s / parse_runs + count_s / count_runs) * 1e6);
    fflush(stdout);
    rc = 0;
out:
    cJSON_free(model_json);
    cJSON_Delete(body);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    const char *encoding = NULL;
    double seconds = 1;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            encoding = argv[++i];
        else
            break;
    }
    if (i == argc || argv[i][0] == '-') {
        fprintf(stderr, "usage: %s [--seconds S] [--encoding E] FILE...\n", argv[0]);
        return 2;
    }
    for (; i < argc; i++)
        if (bench_file(argv[i], encoding, seconds) != 0)
            return 1;
    return 0;
}
