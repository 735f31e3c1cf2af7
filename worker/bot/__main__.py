"""`python -m worker.bot`: the bot process, as `marketscan bot` runs it."""

from worker.bot.polling import main

main()
