from workbench.management.commands._switch import SwitchCommand


class Command(SwitchCommand):
    help = "Restart a stopped AI system: its policy routes its cases again."
    stopped = False
