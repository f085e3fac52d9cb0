#include "gate/cli/clitext.h"

#include <stdint.h>
#include <string.h>

#include "tokenizer/utf8.h"

/* The length of the UTF-8 sequence a lead byte starts, 0 for a byte that cannot lead. */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

static uint32_t decode(const unsigned char *p, size_t n)
{
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = p[0] & lead_mask[n];

    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (p[i] & 0x3F);
    return cp;
}

/* Code points that are valid but must not reach a terminal as they are. */
static int invisible(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) ||     /* C1 controls (CSI is 0x9B) */
           cp == 0x2028 || cp == 0x2029 ||   /* line and paragraph separators */
           (cp >= 0x202A && cp <= 0x202E) || /* bidirectional embeddings and overrides */
           (cp >= 0x2066 && cp <= 0x2069) || /* bidirectional isolates */
           cp == 0x200E || cp == 0x200F || cp == 0x061C;
}

static size_t out(FILE *f, const char *s, size_t n)
{
    if (f != NULL)
        fwrite(s, 1, n, f);
    return n;
}

/* clitext_put, with each quote doubled when csv is set (inside a quoted CSV field). */
static size_t put_text(FILE *f, const char *s, int csv)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    char esc[16];

    while (*p != '\0') {
        size_t n = seq_len(*p);
        if (n == 1 && (*p < 0x20 || *p == 0x7F)) {
            if (*p == '\n' || *p == '\r' || *p == '\t') {
                esc[0] = '\\';
                esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
                w += out(f, esc, 2);
            } else {
                w += out(f, esc, (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p));
            }
            p++;
            continue;
        }
        if (n == 0 || strnlen((const char *)p, n) < n || !utf8_valid((const char *)p, n)) {
            w += out(f, esc, (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p));
            p++;
            continue;
        }
        uint32_t cp = decode(p, n);
        if (csv && *p == '"') {
            out(f, "\"\"", 2);
            w++;
        } else if (invisible(cp)) {
            w += out(f, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp));
        } else {
            out(f, (const char *)p, n);
            w++;
        }
        p += n;
    }
    return w;
}

size_t clitext_put(FILE *f, const char *s)
{
    return put_text(f, s, 0);
}

void clitext_csv(FILE *f, const char *s)
{
    int formula =
        s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    /* line breaks are escaped, so only a comma or a quote needs quoting */
    int quote = strpbrk(s, ",\"") != NULL;

    if (quote)
        fputc('"', f);
    if (formula)
        fputc('\'', f);
    put_text(f, s, quote);
    if (quote)
        fputc('"', f);
}
