/* Entry points of the subcommands (see kapprox.c for the table). */
#ifndef KX_COMMANDS_H
#define KX_COMMANDS_H

/* experiments/decoder */
int kx_cmd_train(int argc, char **argv);
int kx_cmd_sample(int argc, char **argv);
int kx_cmd_dump_qk(int argc, char **argv);

#endif
