/*
 * tokengate-mock: parallel tool calls (x-mock-tools: N). Which tools an answer
 * calls, each call's arguments, the small pieces they stream in, and the order
 * of those pieces: one call after the other, or round-robin over the calls
 * (x-mock-interleave: 1, chat streams only: Anthropic never interleaves its
 * content blocks). mock-openai.c and mock-anthropic.c build the events.
 */
#include "mock.h"

/*
 * Writes call i's arguments, compact JSON of about 80 bytes with an escaped
 * quote and a two-byte UTF-8 letter in it, to buf (MOCK_CALL_ARGS bytes).
 * Returns their length.
 */
size_t call_args(const struct plan *pl, int i, char *buf)
{
    int n = snprintf(buf, MOCK_CALL_ARGS,
                     "{\"query\":\"mock %d\",\"n\":%d,\"items\":[\"alpha %d\",\"beta \\\"%d\\\"\","
                     "\"gamma \xc3\xa9%d\",\"delta %d\"]}",
                     i, i, i, i, i, i);

    (void)pl;
    return n > 0 && n < MOCK_CALL_ARGS ? (size_t)n : 0;
}

/*
 * Writes piece j (from 0) of call i's arguments to buf (MOCK_CALL_ARGS bytes),
 * NUL-terminated: MOCK_CALL_PIECE bytes, or more so as not to split a UTF-8
 * letter, or fewer at the end. Returns its length, 0 past the last piece.
 */
int call_piece(const struct plan *pl, int i, int j, char *buf)
{
    char args[MOCK_CALL_ARGS];
    size_t len = call_args(pl, i, args), at = 0, end;

    for (;;) {
        end = at + MOCK_CALL_PIECE < len ? at + MOCK_CALL_PIECE : len;
        while (end < len && ((unsigned char)args[end] & 0xc0) == 0x80)
            end++;
        if (j-- == 0 || end == len)
            break;
        at = end;
    }
    if (j >= 0 || at == len) {
        buf[0] = '\0';
        return 0;
    }
    memcpy(buf, args + at, end - at);
    buf[end - at] = '\0';
    return (int)(end - at);
}

/*
 * Maps step s (from 0) of the calls' part of a stream to call *i and position
 * *pos in it: 0 its head (id and name), j >= 1 its piece j - 1. Returns 0, or
 * -1 past the last step.
 */
int call_at(const struct plan *pl, int s, int *i, int *pos)
{
    int c, r, any;

    if (!pl->interleave) {
        for (c = 0; c < pl->ncalls; s -= 1 + pl->npieces[c], c++)
            if (s <= pl->npieces[c]) {
                *i = c;
                *pos = s;
                return 0;
            }
        return -1;
    }
    for (r = 0;; r++) {
        for (c = 0, any = 0; c < pl->ncalls; c++) {
            if (r > pl->npieces[c])
                continue;
            any = 1;
            if (s-- == 0) {
                *i = c;
                *pos = r;
                return 0;
            }
        }
        if (!any)
            return -1;
    }
}

/* Writes call i's id to buf: the plan's id2 and "_i" (call_mock_7_0, toolu_mock_7_2). */
void call_id(const struct plan *pl, int i, char *buf, size_t size)
{
    snprintf(buf, size, "%s_%d", pl->id2, i);
}

/* Returns tool t's name (OpenAI: function.name, else name), "mock_tool" when it has none. */
static const char *tool_name(const cJSON *t, int anth)
{
    const char *name = cJSON_GetStringValue(jget(anth ? t : jget(t, "function"), "name"));

    if (!name)
        name = cJSON_GetStringValue(jget(t, "name"));
    return name ? name : "mock_tool";
}

/*
 * Turns a plan that calls a tool (pl->tool set) into one of m->st.tools
 * parallel calls: the first tools of the body, cycling when it gives fewer;
 * one call when the request turns parallel calls off (OpenAI
 * parallel_tool_calls: false, Anthropic tool_choice.disable_parallel_tool_use).
 * The text before the calls (x-mock-tool-text) and each call count in ntok.
 * Without x-mock-tools the plan stays as it is.
 */
void plan_calls(struct plan *pl, const struct mock *m, const cJSON *body, int anth)
{
    const cJSON *tools = jarr(jget(body, "tools")), *t;
    int n = (int)m->st.tools, i, k, len;
    char args[MOCK_CALL_ARGS];

    if (!pl->tool || n <= 0 || !tools || !tools->child)
        return;
    if (anth ? cJSON_IsTrue(jget(jget(body, "tool_choice"), "disable_parallel_tool_use"))
             : cJSON_IsFalse(jget(body, "parallel_tool_calls")))
        n = 1;
    pl->ncalls = n;
    pl->interleave = !anth && m->st.interleave;
    pl->text_tok = (int)m->st.tool_text;
    pl->ntok = pl->text_tok + MOCK_TOOL_TOKENS * n;
    pl->steps = pl->text_tok;
    for (i = 0, t = tools->child; i < n; i++, t = t->next ? t->next : tools->child) {
        pl->calls[i] = tool_name(t, anth);
        len = (int)call_args(pl, i, args);
        pl->npieces[i] = (unsigned char)((len + MOCK_CALL_PIECE - 1) / MOCK_CALL_PIECE);
        for (k = 0; k < pl->npieces[i] && call_piece(pl, i, k, args) > 0; k++)
            ;
        pl->npieces[i] = (unsigned char)k; /* fewer when a letter made a piece longer */
        pl->steps += 1 + k;
    }
    pl->tool = pl->calls[0];
}

/* Returns the bytes the plan's strings (model, tool, calls' tools, stop) take as copies. */
size_t plan_strs_size(const struct plan *pl)
{
    size_t n = strlen(pl->model) + 1 + (pl->tool ? strlen(pl->tool) + 1 : 0) +
               (pl->stop_seq ? strlen(pl->stop_seq) + 1 : 0);
    int i;

    for (i = 0; i < pl->ncalls; i++)
        n += strlen(pl->calls[i]) + 1;
    return n;
}

/* Copies src into dst with its strings copied into buf (plan_strs_size(src) bytes). */
void plan_strs_copy(struct plan *dst, const struct plan *src, char *buf)
{
    const char *const *from[3 + MOCK_MAX_CALLS];
    const char **to[3 + MOCK_MAX_CALLS];
    size_t len;
    int i, n = 0;

    *dst = *src;
    from[n] = &src->model, to[n++] = &dst->model;
    from[n] = &src->tool, to[n++] = &dst->tool;
    from[n] = &src->stop_seq, to[n++] = &dst->stop_seq;
    for (i = 0; i < src->ncalls; i++)
        from[n] = &src->calls[i], to[n++] = &dst->calls[i];
    for (i = 0; i < n; i++) {
        if (!*from[i])
            continue;
        len = strlen(*from[i]) + 1;
        *to[i] = memcpy(buf, *from[i], len);
        buf += len;
    }
}
