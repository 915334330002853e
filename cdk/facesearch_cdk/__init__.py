"""The facesearch AWS deployment as CDK constructs (one per concern), composed by `stack.FaceSearchStack`."""
