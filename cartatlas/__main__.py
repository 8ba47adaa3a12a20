from cartatlas.cli import main

main()
