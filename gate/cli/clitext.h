/*
 * clitext: text from the ledger written to a terminal or a CSV file by the command-line tools
 * (`tokengate logs`, `tokengate usage`). Model names, ids and errors there were sent by
 * clients, so they may hold terminal escapes, line breaks or a spreadsheet formula: these are
 * written escaped, never raw.
 */
#ifndef TG_CLITEXT_H
#define TG_CLITEXT_H

#include <stddef.h>
#include <stdio.h>

/*
 * Writes s to f (or only measures it when f is NULL) with what could move the cursor, change
 * the terminal or reorder the line escaped as visible text: C0 controls and DEL as \n, \r, \t
 * or \xNN; C1 controls, line and paragraph separators and bidirectional overrides as \uNNNN;
 * bytes that are not well-formed UTF-8 as \xNN. Returns the width written, in code points.
 */
size_t clitext_put(FILE *f, const char *s);

/*
 * Writes s to f as one CSV field (RFC 4180): escaped as clitext_put does, then quoted when it
 * holds a comma or a quote. A field starting with '=', '+', '-', '@' (or a tab or CR) gets a
 * leading "'" so that no spreadsheet takes it for a formula. For text from clients; numbers the
 * tool computes are written as they are.
 */
void clitext_csv(FILE *f, const char *s);

#endif
