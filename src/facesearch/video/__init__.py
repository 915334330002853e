"""Video: frame records for Kinesis, the frame producer, face tracking and the detect → track → search pipeline.

Nothing here imports an AWS SDK: the producer takes a boto3 Kinesis client as an argument, so the same code runs
against AWS, LocalStack and moto, and the pipeline core (:mod:`facesearch.video.matcher`) is shared by the local
``facesearch video`` command and the ``match_frames`` Lambda consumer.
"""
