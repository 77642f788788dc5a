from zenctl.cli import main

main()
