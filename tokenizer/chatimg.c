/*
 * chatimg: the input tokens of images, by OpenAI's 512-pixel tile formula and Anthropic's
 * area formula, and the size of an image read from the header of its data: URL.
 */
#include "tokenizer/chat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* An image whose size is unknown is billed at the most its detail can cost: a 768 x 2048
 * image in eight 512-pixel tiles; for Anthropic, the 1.15-megapixel cap over 750. */
#define OPENAI_TILE_MAX 8
#define ANTHROPIC_IMAGE_MAX 1600

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

uint64_t tok_image_tokens_openai(const char *model, int w, int h, const char *detail)
{
    uint64_t base = 85, per_tile = 170, tiles;

    if (model != NULL && has_prefix(model, "gpt-4o-mini")) {
        base = 2833; /* gpt-4o-mini bills images at 33.3 times the base figures */
        per_tile = 5667;
    }
    if (detail != NULL && strcmp(detail, "low") == 0)
        return base;
    if (w <= 0 || h <= 0) {
        tiles = OPENAI_TILE_MAX;
    } else {
        double fw = w, fh = h, s;
        if (fw > 2048 || fh > 2048) { /* fit in 2048 x 2048 */
            s = 2048 / (fw > fh ? fw : fh);
            fw *= s;
            fh *= s;
        }
        s = fw < fh ? fw : fh; /* then the shortest side to 768 */
        if (s > 768) {
            fw = fw * 768 / s;
            fh = fh * 768 / s;
        }
        tiles = (uint64_t)ceil(fw / 512) * (uint64_t)ceil(fh / 512);
    }
    return base + per_tile * tiles;
}

uint64_t tok_image_tokens_anthropic(int w, int h)
{
    double fw = w, fh = h, s, px;

    if (w <= 0 || h <= 0)
        return ANTHROPIC_IMAGE_MAX;
    if (fw > 1568 || fh > 1568) { /* the long edge is scaled to 1568 */
        s = 1568 / (fw > fh ? fw : fh);
        fw *= s;
        fh *= s;
    }
    px = fw * fh;
    if (px > 1150000) { /* and the area to about 1.15 megapixels */
        s = sqrt(1150000 / px);
        fw *= s;
        fh *= s;
    }
    return (uint64_t)ceil(fw * fh / 750);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size from an image file's first n bytes; 0, or -1 when unknown. */
static int sniff_size(const unsigned char *b, size_t n, int *w, int *h)
{
    if (n >= 24 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0) {
        *w = (int)be32(b + 16);
        *h = (int)be32(b + 20);
        return 0;
    }
    if (n >= 10 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) {
        *w = b[6] | b[7] << 8;
        *h = b[8] | b[9] << 8;
        return 0;
    }
    if (n >= 30 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) {
        if (memcmp(b + 12, "VP8X", 4) == 0) {
            *w = 1 + (b[24] | b[25] << 8 | b[26] << 16);
            *h = 1 + (b[27] | b[28] << 8 | b[29] << 16);
            return 0;
        }
        if (memcmp(b + 12, "VP8 ", 4) == 0) {
            *w = (b[26] | b[27] << 8) & 0x3fff;
            *h = (b[28] | b[29] << 8) & 0x3fff;
            return 0;
        }
        if (memcmp(b + 12, "VP8L", 4) == 0 && n >= 25) {
            uint32_t v = b[21] | b[22] << 8 | b[23] << 16 | (uint32_t)b[24] << 24;
            *w = (int)(v & 0x3fff) + 1;
            *h = (int)((v >> 14) & 0x3fff) + 1;
            return 0;
        }
        return -1;
    }
    if (n >= 4 && b[0] == 0xff && b[1] == 0xd8) {
        /* JPEG: walk the segments to the first start-of-frame */
        size_t i = 2;
        while (i + 9 < n) {
            unsigned m;
            if (b[i] != 0xff)
                return -1;
            m = b[i + 1];
            if (m == 0xff) {
                i++;
                continue;
            }
            if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
                *h = b[i + 5] << 8 | b[i + 6];
                *w = b[i + 7] << 8 | b[i + 8];
                return 0;
            }
            i += 2 + (size_t)(b[i + 2] << 8 | b[i + 3]);
        }
    }
    return -1;
}

int tok_image_size(const char *url, int *w, int *h)
{
    enum { HEAD = 65536 }; /* a JPEG's frame header follows its EXIF data */
    const char *b64;
    unsigned char *buf;
    size_t n;
    int len, rc;

    if (url == NULL || !has_prefix(url, "data:") || (b64 = strstr(url, ";base64,")) == NULL)
        return -1;
    b64 += 8;
    n = strlen(b64);
    if (n > HEAD / 3 * 4)
        n = HEAD / 3 * 4;
    n -= n % 4;
    if (n == 0 || (buf = malloc(n / 4 * 3 + 1)) == NULL)
        return -1;
    len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
    rc = len > 0 ? sniff_size(buf, (size_t)len, w, h) : -1;
    free(buf);
    return rc == 0 && *w > 0 && *h > 0 ? 0 : -1;
}
