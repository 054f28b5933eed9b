from umbrellabot.cli import main

raise SystemExit(main())
