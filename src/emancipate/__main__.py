from emancipate.cli import main

main()
