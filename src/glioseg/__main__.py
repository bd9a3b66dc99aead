from glioseg.app.cli import main

main()
