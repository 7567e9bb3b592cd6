import qik.conf
import qik.dep


class EpConst(qik.conf.Dep, frozen=True, tag="ep-const"):
    val: str


def factory(conf: EpConst, module: object = None, space: object = None) -> qik.dep.Const:
    return qik.dep.Const(conf.val)


qik.conf.register_type(EpConst, "epplug.qikplugin.factory")
