/* Entry points of the subcommands (see kapprox.c for the table). */
#ifndef KX_COMMANDS_H
#define KX_COMMANDS_H

int cmd_bench_features(int argc, char **argv);
int cmd_points(int argc, char **argv);
int cmd_features(int argc, char **argv);

int cmd_kernel_error(int argc, char **argv);
int cmd_attn_fidelity(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_synth_qk(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_attn_maps(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);
/* "tables of the paper's claims (targets: kernel, ...)", from reproduce's table of targets */
const char *cmd_reproduce_summary(void);
int cmd_reproduce_all(int argc, char **argv);
int cmd_bench_attention(int argc, char **argv);
/* the decoder */
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_bench_inference(int argc, char **argv);
int cmd_dump_qk(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_reproduce_table1(int argc, char **argv);
int cmd_reproduce_table2(int argc, char **argv);
int cmd_reproduce_budget(int argc, char **argv);
int cmd_reproduce_factors(int argc, char **argv);

#endif
