int cmd_reproduce_table2(int argc, char **argv) { (void)argc; (void)argv; return 2; }
