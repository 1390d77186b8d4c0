"""What /help (and /start) says: the commands every chat platform offers."""

HELP = """joulebot answers with open LLMs and tells you what each answer cost: the energy the measurement \
machine drew, the CO2e at the grid's current carbon intensity, and the SCI score.

Send any text to ask your default model, or:
/ask [model] prompt — ask a model (a new conversation)
/new — start a new conversation (private chats continue the current one; reply to an answer to branch from it)
/system [text|clear] — show, set or clear your system prompt (a group's, in a group)
/cancel — cancel your questions still waiting in the queue
/compare model_a model_b prompt — same prompt, two models, which was greener
/model — show or choose your default model
/models — the models, their size and measured energy per answer
/units joules|watts — energy, or average power and duration
/history — your last exchanges
/stats — average energy per model, per box
/boxes — the measurement boxes and their grids
/box [name|auto] — pin the box that answers you, or let joulebot choose
/forget — delete your prompts and answers"""
