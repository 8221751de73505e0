from tembench.cli import main

main()
