from workbench.management.commands._switch import SwitchCommand


class Command(SwitchCommand):
    help = "Stop an AI system (the kill switch): every case it sends goes to a person."
    stopped = True
