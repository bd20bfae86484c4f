"""Entry point with the study's name: accepts every command line of the study verbatim."""
import sys

from cl_rnn.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1:]))
