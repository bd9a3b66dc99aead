from glioseg.cli import main

main()
