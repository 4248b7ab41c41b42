"""Chinese requests (Simplified and Traditional) rewritten into the English grammar.

Deterministic: the Traditional characters of the words that matter are mapped to Simplified,
numerals become digits (``numbers.chinese_to_digits``: 一百, 两千五, 1.5万, 一半, 百分之二十五),
token names become symbols (美元 -> USDC, 以太坊 -> ETH, 比特币 -> WBTC), the constraints become
English clauses (滑点不超过0.5% -> "with at most 0.5% slippage", 10分钟内 -> "within 10 minutes",
每个WETH最多3100 USDC -> "at most 3100 usdc per weth"), and the action must match one shape:

- swap: 把 X 换成|兑换成 T; 用 X 换 T; 用 X 买 T; 用 T 买 N T2; 买 N T2，用 T 付; 卖掉 X 换 T
- send: 把 X 转给|发给 R; 转|发 X 给 R; 给 R 转|发 X; 转给 R X; 向 R 转账 X
- pay an agent: R is 代理7 / 7号代理 / 智能体7 ("agent 7")
- hire: 雇|找 一个代理 (来|帮我) SKILL，预算|最多 X
- buy_data: 买|购买|下载 数据集 NAME
- balance: 查一下我的 USDC 余额; 我有多少 WETH

``to_english`` returns the English sentence, or None when any Chinese is left over: the
sentence is then not certain and goes on to the model (or is refused), never half-read.
"""

from __future__ import annotations

import re

from agentbazaar.intents.numbers import chinese_to_digits

_T2S = dict(
    zip(
        "換轉給發買賣點鐘內幫錢個萬兩餘額數據僱傭請價當時過於週費預對為幣詢資圖譯將們麼裡這還讓筆"
        "從與單啟動結態認確賬戶匯來條處無應視號開關議準備計劃樣種後總務類檢閱讀寫稅庫極達漲線級約頭"
        "邊億塊現馬謝嗎觀顯長網頁標註識別語聲習練產導夠幾間參協調節銷儲稱實際體醫療氣溫歷專業設驗證"
        "碼錯誤範圍營運維護終獎勵紅亂雜試評論問題門買進賣掉購換兌換幫忙詢問餘額總額聘査錢包帳",
        "换转给发买卖点钟内帮钱个万两余额数据雇佣请价当时过于周费预对为币询资图译将们么里这还让笔"
        "从与单启动结态认确账户汇来条处无应视号开关议准备计划样种后总务类检阅读写税库极达涨线级约头"
        "边亿块现马谢吗观显长网页标注识别语声习练产导够几间参协调节销储称实际体医疗气温历专业设验证"
        "码错误范围营运维护终奖励红乱杂试评论问题门买进卖掉购换兑换帮忙询问余额总额聘查钱包账",
        strict=True,
    )
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TOKENS = [
    (r"美元|美金|刀乐", " usdc "),
    (r"泰达币|泰达", " usdt "),
    (r"以太坊|以太币|以太", " eth "),
    (r"比特币|比特", " wbtc "),
    (r"稳定币", " usdc "),
]
T = r"[a-z][a-z0-9]{0,10}"
NUM = r"\d[\d,]*(?:\.\d+)?k?"
# an amount or a share, already in English: "100 usdc", "$20", "half my weth", "25% of my usdc"
A = rf"(?:\${NUM}|{NUM} ?{T}|(?:half|all) my {T}|{NUM}% of my {T})"
R = r"(?:@a\d+|agent \w+|[a-z][\w.-]{0,63})"
_FILLER_START = re.compile(
    r"^(?:请你?|麻烦你?|帮我|帮忙|给我(?=买|换|兑换|购买|查)|我想要?|我要|我需要|我打算|我希望|"
    r"我准备|我想把|能不能|能否|可以|可不可以|你|现在|马上|立刻|立即|赶紧|那就|就)+"
)
_FILLER_END = re.compile(
    r"(?:吧|呢|啊|呀|吗|谢谢|谢了|好吗|可以吗|行吗|好不好|一下|就行|即可|哈)+$"
)


def has_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


def to_english(text: str, *, fragment: bool = False) -> str | None:
    """The English sentence for a Chinese request, or None (see the module doc). With
    ``fragment`` only the words are rewritten (an answer to a question: "一百个USDC")."""
    addresses: list[str] = []

    def keep(m: re.Match[str]) -> str:
        addresses.append(m.group(0))
        return f" @a{len(addresses) - 1} "

    s = re.sub(r"0x[0-9a-fA-F]{40}(?![0-9a-zA-Z])", keep, text)
    s = "".join(_T2S.get(c, c) for c in s).lower()
    s = s.replace("，", ",").replace("、", ",").replace("：", ":").replace("。", " ")
    s = re.sub(r"[!！?？~～]+", " ", s)
    s = s.replace("一下", "")
    s = chinese_to_digits(s)
    for pattern, symbol in _TOKENS:
        s = re.sub(pattern, symbol, s)
    s = _words(s)
    s = re.sub(r"\s+", " ", s).strip(" ,")
    if not fragment:
        s, tail = _constraints(s)
        s = _FILLER_END.sub("", _FILLER_START.sub("", s)).strip(" ,")
        s = _action(s) + tail
    s = re.sub(r"@a(\d+)", lambda m: addresses[int(m.group(1))], s)
    s = re.sub(r"\s+", " ", s).strip(" ,")
    if s.startswith("hire an agent to "):
        return s  # the skill is the user's own words, in any language
    return None if has_chinese(s) else s


def _words(s: str) -> str:
    """Amounts, shares and agents as English words."""
    s = re.sub(rf"({NUM})\s*(?:个|枚|份)?\s*(?=[a-z])", r" \1 ", s)
    s = re.sub(r"(?:我的)?(?:所有|全部|全)(?:的)?(?:我的)?\s*(?=[a-z])", " all my ", s)
    s = re.sub(rf"(?:我的?)?\s*half\s*(?:的)?\s*(?:我的)?\s*({T})", r" half my \1 ", s)
    s = re.sub(rf"(?:我的)\s*({T})\s*(?:的)\s*half", r" half my \1 ", s)
    s = re.sub(rf"(?:我的?)?\s*({NUM})%\s*(?:的)\s*(?:我的)?\s*({T})", r" \1% of my \2 ", s)
    s = re.sub(rf"(?:我的)\s*({T})\s*(?:的)\s*({NUM})%", r" \2% of my \1 ", s)
    s = re.sub(r"(?:代理|智能体|agent)\s*#?\s*(\d+)\s*号?|(\d+)\s*号\s*(?:代理|智能体)", _agent, s)
    s = re.sub(r"(?:我的)?钱包", " wallet ", s)
    return s


def _agent(m: re.Match[str]) -> str:
    return f" agent {m.group(1) or m.group(2)} "


def _constraints(s: str) -> tuple[str, str]:
    """Slippage, deadline and price limit cut out and returned as English clauses."""
    tail = []
    slip = (
        r"[,]?\s*(?:最大|最高)?(?:的)?滑点\s*(?:容忍度|容差|容忍)?\s*(?:不要超过|不超过|不能超过|最多|"
        r"最大|上限|控制在|不高于|小于|低于|在|为|是|设为|设置为|设成|:)?\s*"
        rf"(?P<n>{NUM})\s*(?P<u>%|个基点|基点|bps)\s*(?:以内|以下|之内|内)?"
        rf"|[,]?\s*(?P<n2>{NUM})\s*(?P<u2>%|个基点|基点|bps)\s*(?:的)?\s*(?:最大)?滑点(?:以内)?"
    )
    m = re.search(slip, s)
    if m:
        n, u = (m["n"], m["u"]) if m["n"] else (m["n2"], m["u2"])
        tail.append(f"with at most {n}{'%' if u == '%' else ' bps'} slippage")
        s = s[: m.start()] + " " + s[m.end() :]
    units = {"分钟": "minutes", "分": "minutes", "秒钟": "seconds", "秒": "seconds"}
    units |= {"小时": "hours", "个小时": "hours", "钟头": "hours", "天": "days"}
    unit = "|".join(sorted(units, key=len, reverse=True))
    m = re.search(
        rf"[,]?\s*(?:在|须在|要在|必须在)?\s*(?P<n>\d+)\s*(?P<u>{unit})\s*(?:内|之内|以内)"
        rf"(?:完成|成交|执行|有效)?|[,]?\s*(?:截止时间|截止|期限|有效期)\s*(?:为|是|:)?\s*"
        rf"(?P<n2>\d+)\s*(?P<u2>{unit})",
        s,
    )
    if m:
        n, u = (m["n"], m["u"]) if m["n"] else (m["n2"], m["u2"])
        tail.append(f"within {n} {units[u]}")
        s = s[: m.start()] + " " + s[m.end() :]
    price = (
        rf"[,]?\s*每(?:个|枚)?\s*(?P<base>{T})\s*(?:最多|不超过|不高于|价格不超过|最高|不超)\s*"
        rf"(?P<n>{NUM})\s*(?P<quote>{T})"
        rf"|[,]?\s*(?:价格|单价)\s*(?:不超过|不高于|最多|最高)\s*(?P<n2>{NUM})\s*(?P<quote2>{T})\s*"
        rf"(?:每个|每枚|/)\s*(?P<base2>{T})"
    )
    m = re.search(price, s)
    if m:
        n = m["n"] or m["n2"]
        quote, base = (m["quote"], m["base"]) if m["n"] else (m["quote2"], m["base2"])
        tail.append(f"at most {n} {quote} per {base}")
        s = s[: m.start()] + " " + s[m.end() :]
    text = re.sub(r"\s+", " ", s).strip(" ,")
    return text, "".join(f", {t}" for t in tail)


_SWAP_TO = r"(?:换成|换为|兑换成|兑换为|转换成|转换为|转成|换到|兑成|兑换|换)"
_SELL = r"(?:卖掉|卖出|卖了|卖)"
_GET = r"(?:换成|换取|兑换成|换|得到|拿|换回)"
_BUY = r"(?:购买|买入|买进|买点|买些|买)"
_SEND_TO = r"(?:转账给|转给|发给|打给|汇给|送给|转到|转入|给)"
_SEND = r"(?:转账|转出|转|发送|发|打|汇|送)"
_PAYING = r"(?:支付|付款|付钱|来付|结算|付)"
_BUDGET = r"(?:预算|最多|不超过|出价|价格不超过|花费不超过|最多花|最多付|最高|上限)"
_SHAPES: list[tuple[str, str]] = [
    # swaps
    (
        rf"(?:把|将)?\s*(?P<a>{A})\s*(?:全部|都)?\s*{_SWAP_TO}\s*(?:成)?\s*(?P<t>{T})",
        "swap {a} for {t}",
    ),
    (rf"(?:用|拿)\s*(?P<a>{A})\s*(?:来)?\s*(?:换|兑换|换成)\s*(?P<t>{T})", "swap {a} for {t}"),
    (
        rf"(?:用|拿|花)\s*(?P<a>{A})\s*(?:来|去)?\s*{_BUY}\s*(?:一些|点|些)?\s*(?P<t>{T})",
        "buy {t} with {a}",
    ),
    (rf"(?:用|拿|花)\s*(?P<t>{T})\s*(?:来|去)?\s*{_BUY}\s*(?P<a>{A})", "buy {a} with {t}"),
    (rf"{_BUY}\s*(?P<a>{A})\s*,?\s*(?:用|拿|以)\s*(?P<t>{T})\s*{_PAYING}?", "buy {a} with {t}"),
    (rf"{_BUY}\s*(?P<a>{A})\s*,?\s*{_PAYING}\s*(?:用)?\s*(?P<t>{T})", "buy {a} with {t}"),
    (rf"{_BUY}\s*(?P<a>{A})", "buy {a}"),
    (
        rf"{_BUY}\s*(?:一些|点|些)?\s*(?P<t2>{T})\s*,?\s*(?:用|拿)\s*(?P<t>{T})\s*{_PAYING}?",
        "buy {t2} with {t}",
    ),
    (rf"(?:把|将)?\s*(?P<a>{A})\s*{_SELL}\s*,?\s*{_GET}\s*(?P<t>{T})", "sell {a} for {t}"),
    (rf"{_SELL}\s*(?P<a>{A})\s*,?\s*{_GET}\s*(?P<t>{T})", "sell {a} for {t}"),
    (rf"{_SELL}\s*(?P<a>{A})", "sell {a}"),
    (rf"(?:把|将)?\s*(?P<t1>{T})\s*(?:换成|兑换成|换)\s*(?P<a>{A})", "swap {t1} for {a}"),
    (
        rf"(?:把|将)?\s*(?:我的)?\s*(?P<t1>{T})\s*{_SWAP_TO}\s*(?:成)?\s*(?P<t>{T})",
        "swap {t1} for {t}",
    ),
    (rf"(?:用|拿)\s*(?P<t1>{T})\s*(?:换|兑换|{_BUY})\s*(?P<t>{T})", "swap {t1} for {t}"),
    (rf"花\s*(?P<a>{A})\s*(?:在|买)\s*(?P<t>{T})\s*(?:上)?", "spend {a} on {t}"),
    (rf"(?:兑换|换)\s*(?P<a>{A})\s*(?:为|成)\s*(?P<t>{T})", "swap {a} for {t}"),
    # sends and agent payments
    (rf"(?:把|将)\s*(?P<a>{A})\s*{_SEND_TO}\s*(?P<r>{R})", "send {a} to {r}"),
    (rf"{_SEND}\s*(?P<a>{A})\s*(?:给|到)\s*(?P<r>{R})", "send {a} to {r}"),
    (rf"给\s*(?P<r>{R})\s*{_SEND}\s*(?:去)?\s*(?P<a>{A})", "send {a} to {r}"),
    (rf"(?:转账给|转给|发给|打给|送给|汇给)\s*(?P<r>{R})\s*,?\s*(?P<a>{A})", "send {a} to {r}"),
    (rf"向\s*(?P<r>{R})\s*(?:转账|转|付款|支付|付)\s*(?P<a>{A})", "send {a} to {r}"),
    (rf"给\s*(?P<r>{R})\s*{_SEND}\s*(?P<n>{NUM})", "send {n} to {r}"),
    (rf"{_SEND}\s*(?P<n>{NUM})\s*(?:给|到)\s*(?P<r>{R})", "send {n} to {r}"),
    (rf"(?:把|将)\s*(?P<a>{A})\s*{_SEND}(?:出去)?", "send {a}"),
    (rf"(?:支付|付给|付款给|付|打赏)\s*(?P<r>agent \w+)\s*(?P<a>{A})", "pay {r} {a}"),
    (rf"给\s*(?P<r>agent \w+)\s*(?:支付|付款|付|打赏)\s*(?P<a>{A})", "pay {a} to {r}"),
    (rf"(?:支付|付|付款)\s*(?P<a>{A})\s*给\s*(?P<r>agent \w+)", "pay {a} to {r}"),
    # balances
    (
        rf"(?:查|查看|查询|看看|看|显示|告诉我)?\s*(?:我的|我)?\s*(?P<t>{T})?\s*(?:的)?\s*(?:余额|结余)"
        r"(?:是多少|有多少|多少|是什么)?",
        "my {t} balance",
    ),
    (
        rf"我(?:的)?(?: wallet )?(?:里)?(?:还)?有多少\s*(?:个)?\s*(?P<t>{T})",
        "how much {t} do i have",
    ),
    (r"我(?:还)?有多少(?:钱|资产)?", "how much do i have"),
    (
        r"(?:查|查看|看看)?\s*wallet\s*(?:里)?\s*有(?:什么|多少|哪些)(?:币|资产)?",
        "what is in my wallet",
    ),
]
_HIRE = re.compile(
    r"(?:雇|雇用|雇佣|请|找|聘请|聘用|雇个|找个)?\s*(?:1\s*个|1\s*位|个|位)?\s*(?:代理|智能体|agent|助手|"
    r"人|机器人)\s*(?:来|帮我|去|为我|给我|帮忙)?\s*(?P<skill>[^,]+?)\s*"
    rf"(?:,?\s*{_BUDGET}\s*(?P<a>{A}))?"
)
_DATA = re.compile(
    r"(?:买|购买|下载|获取)\s*(?:数据集|数据)\s*(?P<name>[a-z0-9][\w.-]{0,63})"
    rf"(?:\s*,?\s*{_BUDGET}\s*(?P<a>{A}))?"
    r"|(?:买|购买|下载|获取)\s*(?P<name2>[a-z0-9][\w.-]{0,63})\s*(?:数据集|数据)"
    rf"(?:\s*,?\s*{_BUDGET}\s*(?P<a2>{A}))?"
)


def _action(s: str) -> str:
    """The action in English, or ``s`` unchanged (its Chinese then makes it uncertain)."""
    for pattern, english in _SHAPES:
        m = re.fullmatch(pattern, s)
        if m:
            values = {k: (v or "").strip() for k, v in m.groupdict().items()}
            return english.format(**values).replace("my  balance", "my balance")
    m = _DATA.fullmatch(s)
    if m:
        name, budget = m["name"] or m["name2"], m["a"] or m["a2"]
        return f"buy the dataset {name}" + (f" for at most {budget}" if budget else "")
    m = _HIRE.fullmatch(s)
    if m:
        budget = f" for at most {m['a']}" if m["a"] else ""
        return f"hire an agent to {m['skill'].strip()}{budget}"
    return s
