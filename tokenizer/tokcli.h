/*
 * tokcli: the tokenizer's subcommands. Each takes the arguments after its name and returns the
 * process exit status: 0, 1 for a failure (unreadable input, a bad token id), 2 for bad usage.
 */
#ifndef TOK_TOKCLI_H
#define TOK_TOKCLI_H

int tok_cmd_count(int argc, char **argv);
int tok_cmd_encode(int argc, char **argv);
int tok_cmd_decode(int argc, char **argv);

#endif
