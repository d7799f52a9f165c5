"""(stub; being filled by the conv/rnn/attention issue)"""
__all__: list = []
