"""Entry point with the study's name: accepts every command line of the study verbatim."""
import sys

from cl_rnn.cli import exit_fast, train_main

if __name__ == "__main__":
    exit_fast(train_main(sys.argv[1:]))
