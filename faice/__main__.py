from faice.cli import main

main()
