from webhookfast.cli import main

main()
