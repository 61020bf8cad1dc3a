from llada_rec.cli import main

main()
